"""An in-memory :class:`~opsbook.metrics.store_api.SampleStore`.

Used by the PromQL conformance runner, by rule unit tests and as the reference the embedded
store is tested against. Not durable, not bounded: for tests and small, short-lived data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from opsbook.metrics.model import (
    Labels,
    Matcher,
    RangeSummary,
    SeriesData,
    matches_all,
    summarize_samples,
)
from opsbook.metrics.store_api import MatcherSets


class _Series:
    __slots__ = ("samples", "sorted_ts", "sorted_vs")

    def __init__(self) -> None:
        self.samples: dict[int, float] = {}
        self.sorted_ts: npt.NDArray[np.int64] | None = None
        self.sorted_vs: npt.NDArray[np.float64] | None = None

    def arrays(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        if self.sorted_ts is None or self.sorted_vs is None:
            ts = np.fromiter(self.samples.keys(), dtype=np.int64, count=len(self.samples))
            vs = np.fromiter(self.samples.values(), dtype=np.float64, count=len(self.samples))
            order = np.argsort(ts, kind="stable")
            self.sorted_ts, self.sorted_vs = ts[order], vs[order]
        return self.sorted_ts, self.sorted_vs


class MemoryStore:
    def __init__(self) -> None:
        self._series: dict[Labels, _Series] = {}

    def append(
        self,
        series: Sequence[Labels],
        timestamps_ms: Sequence[int] | npt.NDArray[np.int64],
        values: Sequence[float] | npt.NDArray[np.float64],
    ) -> None:
        if not (len(series) == len(timestamps_ms) == len(values)):
            raise ValueError("series, timestamps_ms and values must have the same length")
        for labels, t, v in zip(series, timestamps_ms, values, strict=True):
            entry = self._series.get(labels)
            if entry is None:
                entry = self._series[labels] = _Series()
            entry.samples[int(t)] = float(v)
            entry.sorted_ts = entry.sorted_vs = None

    def flush(self) -> None:
        """Nothing to do: memory is as durable as it gets."""

    def close(self) -> None:
        self._series.clear()

    def clear(self) -> None:
        self._series.clear()

    def _window(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int, *, left_open: bool
    ) -> list[SeriesData]:
        found = []
        for labels, entry in self._series.items():
            if not matches_all(labels, matchers):
                continue
            ts, vs = entry.arrays()
            lo = np.searchsorted(ts, start_ms, side="right" if left_open else "left")
            hi = np.searchsorted(ts, end_ms, side="right")
            if hi > lo:
                found.append(SeriesData(labels, ts[lo:hi], vs[lo:hi]))
        return found

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesData]:
        return self._window(matchers, start_ms, end_ms, left_open=False)

    def summarize(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[RangeSummary]:
        summaries = []
        for data in self._window(matchers, start_ms, end_ms, left_open=True):
            summary = summarize_samples(data.labels, data.timestamps, data.values)
            if summary is not None:
                summaries.append(summary)
        return summaries

    def series(self, matcher_sets: MatcherSets, start_ms: int, end_ms: int) -> list[Labels]:
        if not matcher_sets:
            matcher_sets = [[]]
        found: set[Labels] = set()
        for matchers in matcher_sets:
            found.update(d.labels for d in self.select(matchers, start_ms, end_ms))
        return sorted(found)

    def label_names(self, matcher_sets: MatcherSets, start_ms: int, end_ms: int) -> list[str]:
        names = {
            name for labels in self.series(matcher_sets, start_ms, end_ms) for name, _ in labels
        }
        return sorted(names)

    def label_values(
        self, name: str, matcher_sets: MatcherSets, start_ms: int, end_ms: int
    ) -> list[str]:
        values = {
            value
            for labels in self.series(matcher_sets, start_ms, end_ms)
            for key, value in labels
            if key == name
        }
        return sorted(values)
