"""Helpers shared by the embedded store's tests: comparing reads with the reference store."""

from __future__ import annotations

import math

import numpy as np

from opsbook.metrics.model import RangeSummary, SeriesData


def assert_same_series(got: list[SeriesData], want: list[SeriesData]) -> None:
    """Same series with bit-identical timestamps and values (NaN payloads included)."""
    got_by_labels = {s.labels: s for s in got}
    want_by_labels = {s.labels: s for s in want}
    assert len(got_by_labels) == len(got), "a series came back twice"
    assert sorted(got_by_labels) == sorted(want_by_labels)
    for labels, expected in want_by_labels.items():
        actual = got_by_labels[labels]
        np.testing.assert_array_equal(actual.timestamps, expected.timestamps, err_msg=str(labels))
        assert actual.values.view(np.uint64).tolist() == expected.values.view(np.uint64).tolist(), (
            labels,
            actual.values,
            expected.values,
        )


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def assert_same_summaries(got: list[RangeSummary], want: list[RangeSummary]) -> None:
    """Same summaries; float fields equal up to rounding (sums are added in another order)."""
    got_by_labels = {s.labels: s for s in got}
    want_by_labels = {s.labels: s for s in want}
    assert len(got_by_labels) == len(got), "a series came back twice"
    assert sorted(got_by_labels) == sorted(want_by_labels)
    for labels, expected in want_by_labels.items():
        actual = got_by_labels[labels]
        for field in ("count", "first_t", "last_t", "resets", "changes"):
            assert getattr(actual, field) == getattr(expected, field), (
                labels,
                field,
                actual,
                expected,
            )
        for field in ("first_v", "last_v", "sum", "min", "max", "increase"):
            assert _close(getattr(actual, field), getattr(expected, field)), (
                labels,
                field,
                actual,
                expected,
            )
