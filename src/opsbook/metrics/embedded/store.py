"""The embedded sample store: one DuckDB file, a head for recent samples, chunks with rollups.

Write path: :meth:`EmbeddedStore.append` (the scraper, on the event loop) and
:meth:`EmbeddedStore.append_series` (importers) only buffer in memory. A background thread
flushes the buffer every ``flush_interval_s`` (or sooner when it grows past
``max_buffered_samples``) in one DuckDB transaction: samples of buckets still open go to the
``head`` table as they came; samples of closed buckets, and head rows whose bucket has closed
since, are merged into ``chunks`` rows (one per series and bucket, with the bucket's rollup).
DuckDB's write-ahead log makes each committed flush durable; a crash loses at most the samples
buffered since the last flush.

Read path: matchers are resolved by the in-memory :class:`SeriesIndex`; samples come from the
buffer (read-your-writes), the head and the chunks, newest write winning per timestamp.
Summaries over long ranges read the chunks' rollups and only the raw samples at the edges.

Maintenance (same thread): chunks whose bucket ended before ``now - retention`` are deleted,
series left without samples are dropped from the index, and DuckDB reuses the freed space.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import numpy.typing as npt

from opsbook.metrics.embedded import schema
from opsbook.metrics.embedded.chunk_cache import DecodedChunkCache
from opsbook.metrics.embedded.codec import (
    Samples,
    Summaries,
    buckets_of,
    combine_summaries,
    decode_chunks,
    encode_chunks,
    latest_per_timestamp,
    run_starts,
    summarize_runs,
)
from opsbook.metrics.embedded.index import Ids, SeriesIndex, decode_labels, encode_labels
from opsbook.metrics.embedded.lock import MetricsStoreError, claim, in_use_error, release
from opsbook.metrics.model import Labels, Matcher, RangeSummary, SeriesData
from opsbook.metrics.store_api import MatcherSets

logger = logging.getLogger("opsbook.metrics.store")

DEFAULT_CHUNK = timedelta(minutes=30)
DECODED_CACHE_SAMPLES = 4_000_000
"""Decoded chunk samples kept in memory (16 bytes each): an hour of 10,000 series at 15 s."""
CLOSE_DELAY_MS = 120_000


def close_delay_ms(chunk_ms: int) -> int:
    """How long after its end a bucket closes (its head rows move to a chunk): scrapes that
    are a little late still land in the head instead of rewriting a chunk."""
    return min(CLOSE_DELAY_MS, chunk_ms)


_Range = tuple[int, int]


@dataclass(frozen=True, slots=True)
class StoreStats:
    series: int
    chunks: int
    head_samples: int
    buffered_samples: int
    file_bytes: int


class EmbeddedStore:
    """A :class:`~opsbook.metrics.store_api.SampleStore` in one DuckDB file. Thread-safe."""

    def __init__(
        self,
        path: Path,
        connection: duckdb.DuckDBPyConnection,
        registry_key: Path,
        *,
        retention: timedelta | None,
        flush_interval_s: float,
        max_buffered_samples: int,
        maintenance_interval_s: float,
        clock: Callable[[], float],
    ) -> None:
        """Use :meth:`open`."""
        self.path = path
        self._root = connection
        self._registry_key = registry_key
        self._retention_ms = None if retention is None else _ms(retention)
        self._flush_interval_s = flush_interval_s
        self._max_buffered = max_buffered_samples
        self._maintenance_interval_s = maintenance_interval_s
        self._clock = clock

        self._writer = connection.cursor()
        self._chunk_ms = int(_meta(self._writer)["chunk_ms"])
        self._index = SeriesIndex()
        rows = self._writer.execute("SELECT id, labels FROM series").fetchall()
        self._index.load([r[0] for r in rows], [decode_labels(r[1]) for r in rows])
        self._seq = _scalar(self._writer, "SELECT coalesce(max(seq), 0) FROM head")
        self._closed_bucket = -(2**62)  # buckets below this one are closed

        # Guards the index, the buffer and the flush in flight; held only for memory work.
        self._lock = threading.Lock()
        self._buffer: list[Samples] = []
        self._buffered = 0
        self._in_flight: list[Samples] = []
        self._unsaved_series: list[int] = []
        self._buffer_view: Samples | None = None
        # Serialises writers (flushes, maintenance) on ``self._writer``.
        self._write_lock = threading.Lock()
        self._readers = threading.local()
        self._reader_cursors: list[duckdb.DuckDBPyConnection] = []
        self._closed = False
        self._last_maintenance = 0.0
        self._chunk_cache = DecodedChunkCache(DECODED_CACHE_SAMPLES)

        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._background, name=f"metrics-store-{path.name}", daemon=True
        )
        self._thread.start()

    # --- opening and closing -------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        retention: timedelta | None = timedelta(days=30),
        flush_interval_s: float = 5.0,
        max_buffered_samples: int = 2_000_000,
        maintenance_interval_s: float = 60.0,
        chunk: timedelta = DEFAULT_CHUNK,
        clock: Callable[[], float] = time.time,
    ) -> EmbeddedStore:
        """Open the store at ``path`` (a DuckDB file), creating it when missing.

        ``retention`` None keeps samples forever. ``chunk`` (the bucket of chunks and rollups)
        only applies when the file is created; an existing store keeps its own. ``clock``
        gives "now" in seconds for retention and for deciding which buckets are closed.
        """
        path = Path(path)
        key = claim(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = _connect(path)
            try:
                _prepare(connection, path, _ms(chunk))
                return cls(
                    path,
                    connection,
                    key,
                    retention=retention,
                    flush_interval_s=flush_interval_s,
                    max_buffered_samples=max_buffered_samples,
                    maintenance_interval_s=maintenance_interval_s,
                    clock=clock,
                )
            except BaseException:
                connection.close()
                raise
        except BaseException:
            release(key)
            raise

    def close(self) -> None:
        """Flush what is buffered, stop the background thread and close the file."""
        if self._closed:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join()
        try:
            self.flush()
        finally:
            self._closed = True
            with self._lock:
                cursors, self._reader_cursors = self._reader_cursors, []
            for cursor in cursors:
                cursor.close()
            self._writer.close()
            self._root.close()
            release(self._registry_key)

    def __enter__(self) -> EmbeddedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -------------------------------------------------------------------------

    def append(
        self,
        series: Sequence[Labels],
        timestamps_ms: Sequence[int] | npt.NDArray[np.int64],
        values: Sequence[float] | npt.NDArray[np.float64],
    ) -> None:
        """Buffer samples; ``series[i]`` has ``values[i]`` at ``timestamps_ms[i]``."""
        if not (len(series) == len(timestamps_ms) == len(values)):
            raise ValueError("series, timestamps_ms and values must have the same length")
        if len(series) == 0:
            return
        ts = np.array(timestamps_ms, dtype=np.int64)
        vs = np.array(values, dtype=np.float64)
        with self._lock:
            self._check_open()
            ids, created = self._index.ids_for(series)
            self._buffer_samples(Samples(np.array(ids, dtype=np.int64), ts, vs), created)

    def append_series(
        self,
        labels: Labels,
        timestamps_ms: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
    ) -> None:
        """Buffer many samples of one series at once (imports, backfill)."""
        if len(timestamps_ms) != len(values):
            raise ValueError("timestamps_ms and values must have the same length")
        if len(values) == 0:
            return
        ts = np.array(timestamps_ms, dtype=np.int64)
        vs = np.array(values, dtype=np.float64)
        with self._lock:
            self._check_open()
            ids, created = self._index.ids_for([labels])
            self._buffer_samples(Samples(np.full(len(ts), ids[0], np.int64), ts, vs), created)

    def _buffer_samples(self, samples: Samples, created: list[int]) -> None:
        self._buffer.append(samples)
        self._buffered += len(samples)
        self._buffer_view = None
        self._unsaved_series.extend(created)
        if self._buffered >= self._max_buffered:
            self._wake.set()

    def flush(self) -> None:
        """Write everything buffered so far, durably, in one transaction."""
        with self._write_lock:
            with self._lock:
                self._check_open()
                batch, self._buffer, self._buffered = self._buffer, [], 0
                new_series, self._unsaved_series = self._unsaved_series, []
                self._in_flight = batch
                labels = [self._index.labels(i) for i in new_series]
            try:
                self._write(Samples.concat(batch), new_series, labels)
            except BaseException:
                with self._lock:
                    self._buffer = batch + self._buffer
                    self._buffered += sum(len(s) for s in batch)
                    self._unsaved_series = new_series + self._unsaved_series
                    self._in_flight = []
                    self._buffer_view = None
                raise
            with self._lock:
                self._in_flight = []
                self._buffer_view = None

    def _write(self, samples: Samples, new_series: list[int], labels: list[Labels]) -> None:
        now_ms = int(self._clock() * 1000)
        delay = close_delay_ms(self._chunk_ms)
        closed = max(self._closed_bucket, (now_ms - delay) // self._chunk_ms)
        if len(samples):
            samples = latest_per_timestamp(samples)
            samples = self._drop_expired(samples, now_ms)
        head_closed = self._head_has_closed(closed)
        if not len(samples) and not new_series and not head_closed:
            self._closed_bucket = closed
            return
        con = self._writer
        to_chunks = Samples.empty()
        con.execute("BEGIN TRANSACTION")
        try:
            if new_series:
                con.register(
                    "new_series",
                    {
                        "id": np.array(new_series, dtype=np.int32),
                        "labels": np.array([encode_labels(x) for x in labels], dtype=object),
                    },
                )
                con.execute("INSERT INTO series SELECT id, labels FROM new_series")
                con.unregister("new_series")
            # bucket < closed  <=>  t < closed * chunk_ms, without dividing every timestamp
            to_chunks, to_head = samples.split(samples.timestamps < closed * self._chunk_ms)
            if head_closed:
                moved = self._take_closed_head(closed)
                to_chunks = latest_per_timestamp(Samples.concat([moved, to_chunks]))
            if len(to_chunks):
                self._chunk_cache.invalidate()
                self._write_chunks(to_chunks)
            if len(to_head):
                self._seq += 1
                con.register(
                    "new_head",
                    {
                        "series_id": to_head.series_ids.astype(np.int32),
                        "t": to_head.timestamps,
                        "v": to_head.values.view(np.int64),
                    },
                )
                con.execute(f"INSERT INTO head SELECT series_id, t, v, {self._seq} FROM new_head")  # noqa: S608
                con.unregister("new_head")
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        finally:
            if len(to_chunks):
                self._chunk_cache.invalidate()  # again: readers may have started meanwhile
        self._closed_bucket = closed

    def _drop_expired(self, samples: Samples, now_ms: int) -> Samples:
        if self._retention_ms is None:
            return samples
        first_kept = (now_ms - self._retention_ms) // self._chunk_ms
        expired = samples.timestamps < first_kept * self._chunk_ms
        dropped = int(np.count_nonzero(expired))
        if dropped:
            logger.warning(
                "dropped %d samples older than the retention of %s (metrics store %s)",
                dropped,
                timedelta(milliseconds=self._retention_ms),
                self.path,
            )
            return samples.split(expired)[1]
        return samples

    def _head_has_closed(self, closed: int) -> bool:
        row = self._writer.execute(
            "SELECT count(*) FROM head WHERE t < ?", [closed * self._chunk_ms]
        ).fetchone()
        return bool(row and row[0])

    def _take_closed_head(self, closed: int) -> Samples:
        limit = closed * self._chunk_ms
        rows = self._writer.execute(
            "SELECT series_id, t, v FROM head WHERE t < ? ORDER BY seq", [limit]
        ).fetchnumpy()
        self._writer.execute("DELETE FROM head WHERE t < ?", [limit])
        return latest_per_timestamp(
            Samples(
                rows["series_id"].astype(np.int64),
                rows["t"].astype(np.int64),
                rows["v"].astype(np.int64).view(np.float64),
            )
        )

    def _write_chunks(self, samples: Samples) -> None:
        """Merge sorted, de-duplicated samples into the chunks (new samples win)."""
        con = self._writer
        buckets = buckets_of(samples.timestamps, self._chunk_ms)
        starts = run_starts(samples.series_ids, buckets)
        con.register(
            "new_keys",
            {
                "series_id": samples.series_ids[starts].astype(np.int32),
                "bucket": buckets[starts],
            },
        )
        where = (
            "bucket BETWEEN ? AND ? AND (series_id, bucket) IN "
            "(SELECT series_id, bucket FROM new_keys)"
        )
        params = [int(buckets.min()), int(buckets.max())]
        old = _read_chunks(con, where, params)
        if len(old):
            con.execute(f"DELETE FROM chunks WHERE {where}", params)  # noqa: S608
            samples = latest_per_timestamp(Samples.concat([old, samples]))
        con.unregister("new_keys")
        if len(old):
            buckets = buckets_of(samples.timestamps, self._chunk_ms)
        encoded = encode_chunks(samples, self._chunk_ms, buckets)
        rollup = encoded.rollup
        con.register(
            "new_chunks",
            {
                "chunk": np.arange(len(encoded), dtype=np.int64),
                "series_id": rollup.series_ids.astype(np.int32),
                "bucket": encoded.buckets,
                "t_first": encoded.t_first,
                "t_last": encoded.t_last,
                "n": encoded.lengths.astype(np.int32),
                "int_deltas": encoded.int_deltas,
                "base": encoded.base,
                **{name: getattr(rollup, name) for name in schema.ROLLUP_COLUMNS},
            },
        )
        con.register(
            "new_samples",
            {
                "i": np.arange(len(encoded.values), dtype=np.int64),
                "chunk": encoded.chunk_of_sample,
                "delta": encoded.deltas,
                "value": encoded.values,
            },
        )
        con.register(
            "new_nans",
            {
                "i": np.arange(len(encoded.nan_pos), dtype=np.int64),
                "chunk": encoded.nan_chunk,
                "pos": encoded.nan_pos.astype(np.int32),
                "bits": encoded.nan_bits,
            },
        )
        con.execute(schema.INSERT_CHUNKS)
        for name in ("new_chunks", "new_samples", "new_nans"):
            con.unregister(name)

    # --- maintenance ---------------------------------------------------------------------

    def _background(self) -> None:
        while not self._stopping:
            self._wake.wait(self._flush_interval_s)
            self._wake.clear()
            if self._stopping:
                break
            try:
                self.flush()
                if time.monotonic() - self._last_maintenance >= self._maintenance_interval_s:
                    self.apply_retention()
            except Exception:
                # The samples stay buffered and the next round tries again.
                logger.exception("flushing the metrics store %s failed", self.path)

    def apply_retention(self) -> None:
        """Delete chunks past the retention and forget series left without samples."""
        self._last_maintenance = time.monotonic()
        if self._retention_ms is None:
            return
        now_ms = int(self._clock() * 1000)
        first_kept = (now_ms - self._retention_ms) // self._chunk_ms
        with self._write_lock:
            self._check_open()
            con = self._writer
            self._chunk_cache.invalidate()
            con.execute("BEGIN TRANSACTION")
            try:
                deleted = con.execute(
                    "DELETE FROM chunks WHERE bucket < ?", [first_kept]
                ).fetchone()
                deleted_head = con.execute(
                    "DELETE FROM head WHERE t < ?", [first_kept * self._chunk_ms]
                ).fetchone()
                if (deleted and deleted[0]) or (deleted_head and deleted_head[0]):
                    self._forget_empty_series(con)
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise
            self._chunk_cache.invalidate()
            if (deleted and deleted[0]) or (deleted_head and deleted_head[0]):
                con.execute("CHECKPOINT")  # hands the freed blocks back for reuse

    def _forget_empty_series(self, con: duckdb.DuckDBPyConnection) -> None:
        rows = con.execute(
            "SELECT id FROM series WHERE id NOT IN (SELECT DISTINCT series_id FROM chunks) "
            "AND id NOT IN (SELECT DISTINCT series_id FROM head)"
        ).fetchnumpy()
        candidates = rows["id"].astype(np.int64)
        if not len(candidates):
            return
        with self._lock:
            busy = [s.series_ids for s in self._buffer + self._in_flight]
            busy.append(np.array(self._unsaved_series, dtype=np.int64))
            candidates = candidates[~np.isin(candidates, np.concatenate(busy))]
            self._index.remove(candidates.tolist())
        con.register("gone", {"id": candidates.astype(np.int32)})
        con.execute("DELETE FROM series WHERE id IN (SELECT id FROM gone)")
        con.unregister("gone")

    # --- reading -------------------------------------------------------------------------

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesData]:
        """Series matching every matcher with their samples in ``[start_ms, end_ms]``."""
        start_ms, end_ms = int(start_ms), int(end_ms)  # NumPy integers are not SQL parameters
        ids, labels = self._match(matchers)
        if not len(ids) or end_ms < start_ms:
            return []
        buffered = self._buffered_view()
        with self._reading() as cur:
            samples = self._read_samples(cur, ids, [(start_ms, end_ms)], buffered)
        if not len(samples):
            return []
        starts = run_starts(samples.series_ids)
        ends = np.append(starts[1:], len(samples)).tolist()
        positions = np.searchsorted(ids, samples.series_ids[starts]).tolist()
        ts, vs = samples.timestamps, samples.values
        return [
            SeriesData(labels[p], ts[a:b], vs[a:b])
            for p, a, b in zip(positions, starts.tolist(), ends, strict=True)
        ]

    def summarize(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[RangeSummary]:
        """One summary per matching series over ``(start_ms, end_ms]``, from rollups where
        whole buckets are covered and from raw samples at the edges."""
        start_ms, end_ms = int(start_ms), int(end_ms)
        ids, labels = self._match(matchers)
        if not len(ids) or end_ms <= start_ms:
            return []
        buffered = self._buffered_view()
        with self._reading() as cur:
            parts = self._summary_parts(cur, ids, start_ms + 1, end_ms, buffered)
        parts = parts.take(parts.count > 0)
        if not len(parts):
            return []
        parts = parts.take(np.lexsort((parts.first_t, parts.series_ids)))
        total = combine_summaries(parts)
        positions = np.searchsorted(ids, total.series_ids).tolist()
        columns = [getattr(total, name).tolist() for name in schema.ROLLUP_COLUMNS]
        return [
            RangeSummary(labels[p], *fields) for p, *fields in zip(positions, *columns, strict=True)
        ]

    def _summary_parts(
        self, cur: duckdb.DuckDBPyConnection, ids: Ids, lo: int, hi: int, buffered: Samples
    ) -> Summaries:
        chunk = self._chunk_ms
        first_full = -((-lo) // chunk)
        last_full = (hi + 1) // chunk - 1
        if first_full > last_full:
            return _summaries_of(self._read_samples(cur, ids, [(lo, hi)], buffered), [])
        # Buckets with samples in the head or the buffer are read raw: those samples may sit
        # between or replace the ones the chunk's rollup was computed from.
        full_lo, full_hi = first_full * chunk, (last_full + 1) * chunk - 1
        id_sql, id_params = _id_filter(cur, ids)
        head_rows = cur.execute(
            f"SELECT DISTINCT {_floor_div('t', chunk)} AS b FROM head "  # noqa: S608
            f"WHERE t BETWEEN ? AND ? AND {id_sql}",
            [full_lo, full_hi, *id_params],
        ).fetchnumpy()
        in_buffer = buffered.take(
            (buffered.timestamps >= full_lo)
            & (buffered.timestamps <= full_hi)
            & np.isin(buffered.series_ids, ids)
        )
        dirty = np.union1d(
            head_rows["b"].astype(np.int64), buckets_of(in_buffer.timestamps, chunk)
        ).tolist()
        ranges = [(b * chunk, (b + 1) * chunk - 1) for b in dirty]
        if lo < full_lo:
            ranges.insert(0, (lo, full_lo - 1))
        if full_hi < hi:
            ranges.append((full_hi + 1, hi))
        raw = self._read_samples(cur, ids, ranges, buffered) if ranges else Samples.empty()
        columns = ", ".join(schema.ROLLUP_COLUMNS)
        skip = f"AND bucket NOT IN ({', '.join(map(str, dirty))})" if dirty else ""
        rows = cur.execute(
            f"SELECT series_id, {columns} FROM chunks WHERE bucket BETWEEN ? AND ? "  # noqa: S608
            f"AND count > 0 {skip} AND {id_sql}",
            [first_full, last_full, *id_params],
        ).fetchnumpy()
        rollups = Summaries(
            series_ids=rows["series_id"].astype(np.int64),
            count=rows["count"].astype(np.int64),
            first_t=rows["first_t"].astype(np.int64),
            first_v=_as_floats(rows["first_v"]),
            last_t=rows["last_t"].astype(np.int64),
            last_v=_as_floats(rows["last_v"]),
            sum=_as_floats(rows["sum"]),
            min=_as_floats(rows["min"]),
            max=_as_floats(rows["max"]),
            increase=_as_floats(rows["increase"]),
            resets=rows["resets"].astype(np.int64),
            changes=rows["changes"].astype(np.int64),
        )
        return _summaries_of(raw, ranges, rollups)

    def series(self, matcher_sets: MatcherSets, start_ms: int, end_ms: int) -> list[Labels]:
        """Label sets of the series matching any set, with a sample in the range."""
        start_ms, end_ms = int(start_ms), int(end_ms)
        ids, labels = self._match_any(matcher_sets)
        if not len(ids) or end_ms < start_ms:
            return []
        buffered = self._buffered_view()
        with self._reading() as cur:
            present = self._present(cur, ids, start_ms, end_ms, buffered)
        positions = np.searchsorted(ids, present).tolist()
        return sorted(labels[p] for p in positions)

    def label_names(self, matcher_sets: MatcherSets, start_ms: int, end_ms: int) -> list[str]:
        found = self.series(matcher_sets, start_ms, end_ms)
        return sorted({name for labels in found for name, _ in labels})

    def label_values(
        self, name: str, matcher_sets: MatcherSets, start_ms: int, end_ms: int
    ) -> list[str]:
        found = self.series(matcher_sets, start_ms, end_ms)
        return sorted({value for labels in found for key, value in labels if key == name})

    def stats(self) -> StoreStats:
        with self._reading() as cur:
            chunks, head = cur.execute(
                "SELECT (SELECT count(*) FROM chunks), (SELECT count(*) FROM head)"
            ).fetchone() or (0, 0)
        with self._lock:
            series, buffered = len(self._index), self._buffered
        return StoreStats(
            series=series,
            chunks=int(chunks),
            head_samples=int(head),
            buffered_samples=buffered,
            file_bytes=self.path.stat().st_size,
        )

    def _present(
        self, cur: duckdb.DuckDBPyConnection, ids: Ids, start: int, end: int, buffered: Samples
    ) -> Ids:
        """Ids among ``ids`` with at least one sample (stale markers count) in the range."""
        id_sql, id_params = _id_filter(cur, ids)
        chunk = self._chunk_ms
        # A chunk that lies inside the range proves its series present without decoding it.
        inside = (
            cur.execute(
                f"SELECT DISTINCT series_id FROM chunks WHERE bucket BETWEEN ? AND ? "  # noqa: S608
                f"AND t_first >= ? AND t_last <= ? AND {id_sql} "
                f"UNION SELECT DISTINCT series_id FROM head WHERE t BETWEEN ? AND ? AND {id_sql}",
                [start // chunk, end // chunk, start, end, *id_params, start, end, *id_params],
            )
            .fetchnumpy()["series_id"]
            .astype(np.int64)
        )
        rest = ids[~np.isin(ids, inside)]
        found = [inside]
        if len(rest):
            found.append(
                np.unique(self._read_samples(cur, rest, [(start, end)], buffered).series_ids)
            )
        return np.unique(np.concatenate(found))

    def _read_samples(
        self,
        cur: duckdb.DuckDBPyConnection,
        ids: Ids,
        ranges: list[_Range],
        buffered: Samples,
    ) -> Samples:
        """Samples of ``ids`` inside any of the inclusive ``ranges``, sorted by (series, time),
        the newest write winning per timestamp: buffer over head over chunks."""
        chunk = self._chunk_ms
        id_sql, id_params = _id_filter(cur, ids)
        # One query per range: DuckDB prunes row groups by the ``bucket`` range of each.
        stored = Samples.concat(
            [
                self._cached_chunks(
                    cur,
                    f"bucket BETWEEN ? AND ? AND t_last >= ? AND t_first <= ? AND {id_sql}",
                    [lo // chunk, hi // chunk, lo, hi, *id_params],
                )
                for lo, hi in ranges
            ]
        )

        time_sql = " OR ".join("t BETWEEN ? AND ?" for _ in ranges)
        head = cur.execute(
            f"SELECT series_id, t, v, seq FROM head WHERE ({time_sql}) AND {id_sql}",  # noqa: S608
            [p for r in ranges for p in r] + id_params,
        ).fetchnumpy()
        newer: list[Samples] = []
        if len(head["t"]):
            seq = head["seq"].astype(np.int64)
            order = np.argsort(seq, kind="stable")
            newer.append(
                Samples(
                    head["series_id"].astype(np.int64)[order],
                    head["t"].astype(np.int64)[order],
                    head["v"].astype(np.int64).view(np.float64)[order],
                )
            )
        if len(buffered):
            keep = _in_ranges(buffered.timestamps, ranges) & np.isin(buffered.series_ids, ids)
            newer.append(buffered.take(keep))
        stored = stored.take(_in_ranges(stored.timestamps, ranges))
        if not any(len(part) for part in newer):
            return stored  # one chunk per series and bucket: sorted, no duplicates
        return latest_per_timestamp(Samples.concat([stored, *newer]))

    def _cached_chunks(
        self, cur: duckdb.DuckDBPyConnection, where: str, params: list[int]
    ) -> Samples:
        """:func:`_read_chunks`, from the decoded-chunk cache when it has every chunk."""
        generation: int = self._readers.generation
        keys = cur.execute(
            f"SELECT series_id, bucket FROM chunks WHERE {where}",  # noqa: S608
            params,
        ).fetchnumpy()
        series_ids = keys["series_id"].astype(np.int64)
        if not len(series_ids):
            return Samples.empty()
        cached = self._chunk_cache.get(series_ids, keys["bucket"].astype(np.int64))
        if cached is not None:
            return cached
        decoded = _read_chunks(cur, where, params)
        self._chunk_cache.put(decoded, self._chunk_ms, generation)
        return decoded

    def _match(self, matchers: Sequence[Matcher]) -> tuple[Ids, list[Labels]]:
        with self._lock:
            self._check_open()
            ids = self._index.match(matchers)
            return ids, [self._index.labels(i) for i in ids.tolist()]

    def _match_any(self, matcher_sets: MatcherSets) -> tuple[Ids, list[Labels]]:
        with self._lock:
            self._check_open()
            sets = matcher_sets or [[]]
            ids = np.unique(np.concatenate([self._index.match(m) for m in sets]))
            return ids, [self._index.labels(i) for i in ids.tolist()]

    def _buffered_view(self) -> Samples:
        """The samples not yet committed (in flight first: they were written earlier)."""
        with self._lock:
            if self._buffer_view is None:
                self._buffer_view = Samples.concat(self._in_flight + self._buffer)
            return self._buffer_view

    @contextlib.contextmanager
    def _reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """This thread's cursor, inside one read transaction (a consistent snapshot)."""
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._readers, "cursor", None)
        if cursor is None:
            with self._lock:
                self._check_open()
                cursor = self._root.cursor()
                self._reader_cursors.append(cursor)
            self._readers.cursor = cursor
        # Read before the snapshot starts: chunks decoded from it may enter the cache only if
        # no write touched the chunks since (see chunk_cache).
        self._readers.generation = self._chunk_cache.generation
        cursor.execute("BEGIN TRANSACTION")
        try:
            yield cursor
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")

    def _check_open(self) -> None:
        if self._closed:
            raise MetricsStoreError(f"the metrics store {self.path} is closed")


def _read_chunks(cur: duckdb.DuckDBPyConnection, where: str, params: list[int]) -> Samples:
    """Decoded samples of the chunks selected by ``where``, sorted by (series, time).

    DuckDB does not keep the order of unnested rows across parallel pipelines (even their
    pieces can interleave), so every sample comes with its row id and its index in the row's
    lists, and is put in place by those.
    """
    meta = cur.execute(
        "SELECT rowid AS r, series_id, t_first, n, int_deltas, base "  # noqa: S608
        f"FROM chunks WHERE {where} ORDER BY rowid",
        params,
    ).fetchnumpy()
    if not len(meta["n"]):
        return Samples.empty()
    flat = cur.execute(
        "SELECT rowid AS r, unnest(range(n)) AS i, unnest(deltas) AS d, unnest(vals) AS v "  # noqa: S608
        f"FROM chunks WHERE {where}",
        params,
    ).fetchnumpy()
    row_ids = meta["r"].astype(np.int64)
    lengths = meta["n"].astype(np.int64)
    row_starts = np.cumsum(lengths) - lengths
    flat_rows, index = flat["r"].astype(np.int64), flat["i"].astype(np.int64)
    if len(flat_rows) != int(lengths.sum()):
        raise MetricsStoreError("the metrics store returned inconsistent chunk rows")
    # Runs of consecutive samples of one row move as a whole.
    piece = np.flatnonzero(
        np.concatenate(([True], (flat_rows[1:] != flat_rows[:-1]) | (index[1:] != index[:-1] + 1)))
    )
    target = row_starts[np.searchsorted(row_ids, flat_rows[piece])] + index[piece]
    piece_lengths = np.diff(np.append(piece, len(flat_rows)))
    destination = np.repeat(target - piece, piece_lengths) + np.arange(len(flat_rows))
    deltas = np.empty(len(flat_rows), np.int64)
    values = np.empty(len(flat_rows), np.float64)
    deltas[destination] = flat["d"]
    values[destination] = flat["v"]

    nans = cur.execute(
        "SELECT rowid AS r, unnest(nan_pos) AS p, unnest(nan_bits) AS b "  # noqa: S608
        f"FROM chunks WHERE ({where}) AND nan_pos IS NOT NULL",
        params,
    ).fetchnumpy()
    nan_rows = nans["r"].astype(np.int64)
    nan_at = row_starts[np.searchsorted(row_ids, nan_rows)] + nans["p"].astype(np.int64)
    return decode_chunks(
        meta["series_id"].astype(np.int64),
        meta["t_first"].astype(np.int64),
        lengths,
        meta["int_deltas"].astype(bool),
        meta["base"].astype(np.float64),
        deltas,
        values,
        nan_at,
        nans["b"].astype(np.int64),
    )


def _id_filter(cur: duckdb.DuckDBPyConnection, ids: Ids) -> tuple[str, list[int]]:
    """SQL restricting ``series_id`` to ``ids`` (sorted): a range when they are contiguous."""
    lo, hi = int(ids[0]), int(ids[-1])
    if hi - lo + 1 == len(ids):
        return "series_id BETWEEN ? AND ?", [lo, hi]
    cur.register("query_ids", {"id": ids.astype(np.int32)})
    return "series_id BETWEEN ? AND ? AND series_id IN (SELECT id FROM query_ids)", [lo, hi]


def _in_ranges(timestamps: npt.NDArray[np.int64], ranges: list[_Range]) -> npt.NDArray[np.bool_]:
    keep = np.zeros(len(timestamps), dtype=bool)
    for lo, hi in ranges:
        keep |= (timestamps >= lo) & (timestamps <= hi)
    return keep


def _summaries_of(raw: Samples, ranges: list[_Range], *more: Summaries) -> Summaries:
    """Summaries of raw samples, one per series and range, plus ``more``."""
    parts = list(more)
    if len(raw):
        range_of = np.zeros(len(raw), np.int64)
        if len(ranges) > 1:
            range_of = np.searchsorted(np.array([lo for lo, _ in ranges]), raw.timestamps, "right")
        starts = run_starts(raw.series_ids, range_of)
        parts.append(summarize_runs(raw.series_ids[starts], starts, raw.timestamps, raw.values))
    if not parts:
        return summarize_runs(
            np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
        )
    return Summaries.concat(parts)


def _as_floats(column: npt.NDArray[np.generic]) -> npt.NDArray[np.float64]:
    """A fetched DOUBLE column, its NULLs (how DuckDB took NaN from NumPy) back as NaN."""
    if isinstance(column, np.ma.MaskedArray):
        return np.ma.filled(column.astype(np.float64), np.nan)
    return column.astype(np.float64)


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def _floor_div(column: str, divisor: int) -> str:
    """SQL for Python's ``column // divisor`` (DuckDB's ``//`` truncates towards zero)."""
    return f"(({column} - (({column} % {divisor}) + {divisor}) % {divisor}) // {divisor})"


def _ms(duration: timedelta) -> int:
    return int(duration / timedelta(milliseconds=1))


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path))
    except duckdb.Error as exc:
        in_use = in_use_error(path, str(exc))
        if in_use is not None:
            raise in_use from None
        raise MetricsStoreError(
            f"cannot open the metrics store {path}: {exc}. If the file is not an opsbook "
            "metrics store, move it away or point storage.data_dir elsewhere."
        ) from None


def _prepare(con: duckdb.DuckDBPyConnection, path: Path, chunk_ms: int) -> None:
    """Create the tables in a new file; check the format of an existing one."""
    tables = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if not tables:
        con.execute("BEGIN TRANSACTION")
        con.execute(schema.CREATE_TABLES)
        con.executemany(
            "INSERT INTO store_meta VALUES (?, ?)",
            [["format", str(schema.FORMAT_VERSION)], ["chunk_ms", str(chunk_ms)]],
        )
        con.execute("COMMIT")
        return
    if not set(schema.TABLES) <= tables:
        raise MetricsStoreError(
            f"{path} is a DuckDB file but not an opsbook metrics store; move it away or point "
            "storage.data_dir elsewhere"
        )
    version = _meta(con).get("format")
    if version != str(schema.FORMAT_VERSION):
        raise MetricsStoreError(
            f"the metrics store {path} has format {version}, this opsbook reads format "
            f"{schema.FORMAT_VERSION}; use the opsbook version that wrote it"
        )


def _meta(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("SELECT key, value FROM store_meta").fetchall())
