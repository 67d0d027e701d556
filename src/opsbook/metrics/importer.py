"""``opsbook import FILE``: backfill an OpenMetrics file into a sample store.

The file is what ``promtool tsdb create-blocks-from openmetrics`` reads: OpenMetrics text with
a timestamp (Unix seconds) on every sample, ending in ``# EOF``. It may be several gigabytes
(10,000 series of 5,760 samples each), so it is streamed in blocks through the exposition
parser's line loop (:class:`~opsbook.metrics.exposition.LineParser`) with one
:class:`~opsbook.metrics.exposition.SeriesCache`, so each series' labels are parsed once.

Nothing is written before the whole file has been checked: a file whose samples fit in one
batch is parsed once and then written; a larger one is read twice, the first time only to
validate it. Memory use depends on the batch size, not on the size of the file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from opsbook.metrics.exposition import (
    ExpositionError,
    LineParser,
    SeriesCache,
    decode_utf8,
)
from opsbook.metrics.model import Labels
from opsbook.metrics.store_api import SampleStore

Progress = Callable[[int, int], None]
"""Called with (bytes read so far, bytes to read in all) now and then during an import."""

READ_BYTES = 8 * 1024 * 1024
MAX_LINE_BYTES = 64 * 1024 * 1024


class OpenMetricsImportError(Exception):
    """An import file that cannot be imported; the message is ``FILE:LINE: what is wrong``."""

    def __init__(self, path: Path, line: int | None, reason: str) -> None:
        location = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{location}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ImportReport:
    samples: int
    series: int
    min_ts_ms: int | None
    max_ts_ms: int | None
    duration_s: float


@runtime_checkable
class BulkAppendStore(Protocol):
    """A store that takes many samples of one series at once (the embedded store does)."""

    def append_series(
        self,
        labels: Labels,
        timestamps_ms: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
    ) -> None: ...


def import_openmetrics(
    path: Path,
    store: SampleStore,
    *,
    progress: Progress | None = None,
    batch_samples: int = 1_000_000,
) -> ImportReport:
    """Import every sample of the OpenMetrics file ``path`` into ``store`` and flush it.

    Samples go to the store in batches of about ``batch_samples``, one ``append_series`` call
    per series when the store has it, else through ``append``. ``_created`` samples are
    skipped, as Prometheus does. ``progress(done, total)`` is called after each block read;
    for a file read twice, ``total`` becomes twice the file size when the second reading
    turns out to be needed.

    Raises :class:`OpenMetricsImportError` (``FILE:LINE: reason``) for a file that is not
    valid: a sample without a timestamp, a missing ``# EOF``, a line that does not parse. The
    whole file is checked before the first sample is handed to the store, so an invalid file
    leaves the store as it was. Only a file that changes while it is imported can fail after
    writing has begun; that error says so.
    """
    if batch_samples <= 0:
        raise ValueError("batch_samples must be positive")
    started = time.perf_counter()
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise OpenMetricsImportError(path, None, exc.strerror or str(exc)) from None
    run = _Import(path, store, size, progress, batch_samples)
    run.validate()
    run.write()
    store.flush()
    return ImportReport(
        samples=run.samples,
        series=len(run.labels_by_code),
        min_ts_ms=run.min_ts_ms,
        max_ts_ms=run.max_ts_ms,
        duration_s=time.perf_counter() - started,
    )


@dataclass(slots=True)
class _Block:
    """The samples of one block of the file; ``codes`` number the series in import order."""

    codes: npt.NDArray[np.int64]
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.codes)


class _Import:
    def __init__(
        self, path: Path, store: SampleStore, size: int, progress: Progress | None, batch: int
    ) -> None:
        self.path = path
        self.store = store
        self.size = size
        self.progress = progress
        self.batch = batch
        self.cache = SeriesCache()
        self.code_of: dict[Labels, int] = {}
        self.labels_by_code: list[Labels] = []
        self.samples = 0
        self.min_ts_ms: int | None = None
        self.max_ts_ms: int | None = None
        self.passes = 1
        self.bytes_done = 0
        # The samples of the first reading, while they fit in one batch (else None).
        self.kept: list[_Block] | None = []

    def validate(self) -> None:
        """First reading: check every line, count, and keep the samples if they are few."""
        kept_samples = 0
        for block in self._blocks():
            self.samples += len(block)
            low, high = int(block.timestamps.min()), int(block.timestamps.max())
            self.min_ts_ms = low if self.min_ts_ms is None else min(self.min_ts_ms, low)
            self.max_ts_ms = high if self.max_ts_ms is None else max(self.max_ts_ms, high)
            if self.kept is not None:
                self.kept.append(block)
                kept_samples += len(block)
                if kept_samples > self.batch:
                    self.kept = None  # too many to hold: read the file again to write it
                    self.passes = 2

    def write(self) -> None:
        if self.kept is not None:
            self._write(self.kept)
            return
        pending: list[_Block] = []
        pending_samples = 0
        written = 0
        changed = "the file changed during the import; the store holds part of it. Import again"
        try:
            for block in self._blocks():
                pending.append(block)
                pending_samples += len(block)
                if pending_samples >= self.batch:
                    self._write(pending)
                    written += pending_samples
                    pending, pending_samples = [], 0
        except OpenMetricsImportError as exc:
            raise OpenMetricsImportError(self.path, exc.line, f"{exc.reason} ({changed})") from None
        self._write(pending)
        written += pending_samples
        if written != self.samples:
            raise OpenMetricsImportError(
                self.path,
                None,
                f"{self.samples} samples when checked, {written} when written: {changed}",
            )

    def _blocks(self) -> Iterator[_Block]:
        """The file's samples, one block of lines at a time."""
        parser = LineParser(True, self.cache, require_timestamps=True)
        try:
            for _ in self._feed(parser):
                series, values, timestamps = parser.take()
                if series:
                    yield _Block(
                        codes=self._codes(series),
                        # require_timestamps: no sample without one got through
                        timestamps=np.array(timestamps, dtype=np.int64),
                        values=np.array(values, dtype=np.float64),
                    )
                if self.progress is not None:
                    self.progress(self.bytes_done, self.size * self.passes)
        except ExpositionError as exc:
            raise OpenMetricsImportError(self.path, exc.line, exc.reason) from None
        except OSError as exc:
            raise OpenMetricsImportError(self.path, None, exc.strerror or str(exc)) from None

    def _feed(self, parser: LineParser) -> Iterator[None]:
        """Feed the file to ``parser`` block by block, yielding after each block."""
        next_line = 1
        carry = b""
        with self.path.open("rb") as file:
            while data := file.read(READ_BYTES):
                self.bytes_done += len(data)
                data = carry + data
                cut = data.rfind(b"\n")
                if cut < 0:
                    if len(data) > MAX_LINE_BYTES:
                        raise ExpositionError(
                            f"the line is longer than {MAX_LINE_BYTES // 2**20} MiB "
                            "(is this an OpenMetrics text file?)",
                            next_line,
                        )
                    carry = data
                    continue
                carry = data[cut + 1 :]
                lines = decode_utf8(data[:cut], first_line=next_line).split("\n")
                parser.feed(lines, next_line)
                next_line += len(lines)
                yield
        if carry:  # the last line, without a final newline
            parser.feed([decode_utf8(carry, first_line=next_line)], next_line)
            next_line += 1
            yield
        parser.finish(next_line - 1)

    def _codes(self, series: list[Labels]) -> npt.NDArray[np.int64]:
        """The series number of every sample, without hashing each sample's labels.

        The cache hands out one Labels object per series text, so object identity groups the
        samples; only one object per distinct series is looked up by value. All the objects
        are alive (in ``series``) while their ids are compared.
        """
        ids = np.fromiter(map(id, series), dtype=np.int64, count=len(series))
        _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
        codes = np.fromiter(
            (self._code(series[i]) for i in first.tolist()), dtype=np.int64, count=len(first)
        )
        return codes[inverse.reshape(-1)]

    def _code(self, labels: Labels) -> int:
        code = self.code_of.get(labels)
        if code is None:
            code = self.code_of[labels] = len(self.labels_by_code)
            self.labels_by_code.append(labels)
        return code

    def _write(self, blocks: list[_Block]) -> None:
        if not blocks:
            return
        codes = np.concatenate([b.codes for b in blocks])
        timestamps = np.concatenate([b.timestamps for b in blocks])
        values = np.concatenate([b.values for b in blocks])
        if isinstance(self.store, BulkAppendStore):
            order = np.argsort(codes, kind="stable")
            codes, timestamps, values = codes[order], timestamps[order], values[order]
            bounds = (np.flatnonzero(np.diff(codes)) + 1).tolist()
            starts = [0, *bounds]
            ends = [*bounds, len(codes)]
            for start, end in zip(starts, ends, strict=True):
                labels = self.labels_by_code[int(codes[start])]
                self.store.append_series(labels, timestamps[start:end], values[start:end])
        else:
            labels_by_code = self.labels_by_code
            series = [labels_by_code[code] for code in codes.tolist()]
            self.store.append(series, timestamps, values)
