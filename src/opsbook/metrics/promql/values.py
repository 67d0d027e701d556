"""The evaluator's values: every expression is evaluated at all steps of a query at once.

- :class:`ScalarSteps`: one float per step.
- :class:`VectorSteps`: an instant vector per step as dense ``(series, steps)`` arrays with a
  presence mask (NaN is a value in PromQL, so absence needs its own mask).
- :class:`RangeSteps`: a range vector per step: the samples of each series flattened into one
  array, and per (series, step) the slice ``[lo, hi)`` of samples inside that step's window.

An instant query is a range query with one step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from opsbook.metrics.model import METRIC_NAME, Labels
from opsbook.metrics.query import QueryError

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


@dataclass(slots=True)
class ScalarSteps:
    values: Floats


@dataclass(slots=True)
class StringValue:
    value: str


@dataclass(slots=True)
class VectorSteps:
    labels: list[Labels]
    values: Floats  # (series, steps)
    present: Bools  # (series, steps)
    sample_ts: Ints | None = None  # (series, steps): the samples' own timestamps, for timestamp()

    @classmethod
    def empty(cls, steps: int) -> VectorSteps:
        return cls([], np.zeros((0, steps)), np.zeros((0, steps), dtype=bool))

    def __len__(self) -> int:
        return len(self.labels)

    def steps(self) -> int:
        return int(self.values.shape[1])

    def compact(self) -> VectorSteps:
        """Without the series that are absent at every step."""
        keep = self.present.any(axis=1)
        if keep.all():
            return self
        rows = np.flatnonzero(keep)
        return VectorSteps(
            [self.labels[i] for i in rows],
            self.values[rows],
            self.present[rows],
            None if self.sample_ts is None else self.sample_ts[rows],
        )


@dataclass(slots=True)
class RangeSteps:
    labels: list[Labels]
    ts: Ints  # samples of all series, series after series, stale markers removed
    vs: Floats
    offsets: Ints  # series i has samples [offsets[i], offsets[i+1])
    lo: Ints  # (series, steps): window i,j is [lo, hi) in the flat arrays
    hi: Ints
    window_ends: Ints  # (steps): the window (end - range, end] per step
    range_ms: int

    def __len__(self) -> int:
        return len(self.labels)


Value = ScalarSteps | StringValue | VectorSteps | RangeSteps


def drop_metric_name(labels: Labels) -> Labels:
    if labels and labels[0][0] == METRIC_NAME:
        return labels[1:]
    return tuple(pair for pair in labels if pair[0] != METRIC_NAME)


def merge_same_labels(vector: VectorSteps, message: str) -> VectorSteps:
    """Merge series that ended up with the same labels; they must not overlap in time.

    Functions that drop the metric name can make ``a{x="1"}`` and ``b{x="1"}`` the same
    series; where both have a value at one step the result is ambiguous and Prometheus fails.
    """
    if len(set(vector.labels)) == len(vector.labels):
        return vector
    order: dict[Labels, list[int]] = {}
    for row, labels in enumerate(vector.labels):
        order.setdefault(labels, []).append(row)
    n = len(order)
    values = np.zeros((n, vector.steps()))
    present = np.zeros((n, vector.steps()), dtype=bool)
    sample_ts = None if vector.sample_ts is None else np.zeros((n, vector.steps()), np.int64)
    for out, rows in enumerate(order.values()):
        if len(rows) == 1:
            values[out], present[out] = vector.values[rows[0]], vector.present[rows[0]]
            if sample_ts is not None and vector.sample_ts is not None:
                sample_ts[out] = vector.sample_ts[rows[0]]
            continue
        if (vector.present[rows].sum(axis=0) > 1).any():
            raise QueryError(message)
        for row in rows:
            mask = vector.present[row]
            values[out][mask] = vector.values[row][mask]
            present[out] |= mask
            if sample_ts is not None and vector.sample_ts is not None:
                sample_ts[out][mask] = vector.sample_ts[row][mask]
    return VectorSteps(list(order), values, present, sample_ts)


DUPLICATE_LABELSET = "vector cannot contain metrics with the same labelset"
