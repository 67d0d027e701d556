"""Decoded chunks kept in memory, so that queries repeated over recent data (rule evaluations,
dashboards refreshing every few seconds) do not decode the same chunks again and again.

Chunks are immutable between writes to the ``chunks`` table; every such write invalidates the
whole cache (before the write and again after its commit), and a reader may only add what it
decoded if no invalidation happened since it started: a reader whose snapshot predates a write
can never leave stale chunks behind.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from opsbook.metrics.embedded.codec import I64, Samples, buckets_of, run_starts

ChunkKey = tuple[int, int]  # (series id, bucket)


class DecodedChunkCache:
    def __init__(self, max_samples: int) -> None:
        self._max_samples = max_samples
        # (series ids, timestamps, values) of one chunk; the ids are kept to concatenate fast.
        self._entries: OrderedDict[ChunkKey, tuple[I64, I64, np.ndarray]] = OrderedDict()
        self._samples = 0
        self._generation = 0
        self._lock = threading.Lock()

    @property
    def generation(self) -> int:
        return self._generation

    def invalidate(self) -> None:
        with self._lock:
            self._entries.clear()
            self._samples = 0
            self._generation += 1

    def get(self, series_ids: I64, buckets: I64) -> Samples | None:
        """The chunks ``(series_ids[i], buckets[i])`` sorted by (series, time); None unless all
        of them are cached."""
        order = np.lexsort((buckets, series_ids))
        keys = zip(series_ids[order].tolist(), buckets[order].tolist(), strict=True)
        entries = []
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is None:
                    return None
                self._entries.move_to_end(key)
                entries.append(entry)
        if not entries:
            return Samples.empty()
        ids, timestamps, values = zip(*entries, strict=True)
        return Samples(np.concatenate(ids), np.concatenate(timestamps), np.concatenate(values))

    def put(self, decoded: Samples, chunk_ms: int, generation: int) -> None:
        """Remember the chunks in ``decoded`` (sorted by (series, time)) if nothing was
        invalidated since ``generation`` was read."""
        if not len(decoded) or len(decoded) > self._max_samples:
            return
        buckets = buckets_of(decoded.timestamps, chunk_ms)
        starts = run_starts(decoded.series_ids, buckets)
        ends = np.append(starts[1:], len(decoded))
        with self._lock:
            if generation != self._generation:
                return
            for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
                key = (int(decoded.series_ids[start]), int(buckets[start]))
                if key in self._entries:
                    continue
                entry = (
                    decoded.series_ids[start:end].copy(),
                    decoded.timestamps[start:end].copy(),
                    decoded.values[start:end].copy(),
                )
                self._entries[key] = entry
                self._samples += end - start
            while self._samples > self._max_samples and self._entries:
                _, (_ids, timestamps, _values) = self._entries.popitem(last=False)
                self._samples -= len(timestamps)
