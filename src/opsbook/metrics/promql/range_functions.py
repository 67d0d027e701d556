"""Functions over range vectors (``rate``, ``*_over_time``, ...), vectorized over series and steps.

Each takes a :class:`RangeSteps` and the per-step scalar arguments and returns ``(values,
present)`` arrays of shape ``(series, steps)``. The hot ones (rate, increase, the sums and
extremes) are NumPy over all windows at once; the rest evaluate window by window, which is
exact and fast enough for the sizes they are used at.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from opsbook.metrics.promql import kahan
from opsbook.metrics.promql.annotations import Annotate, check_quantiles
from opsbook.metrics.promql.values import Bools, Floats, Ints, RangeSteps
from opsbook.metrics.query import QueryError

Result = tuple[Floats, Bools]


def _counts(r: RangeSteps) -> Ints:
    counts: Ints = r.hi - r.lo
    return counts


def reduce_windows(ufunc: np.ufunc, values: Floats, lo: Ints, hi: Ints) -> Floats:
    """``ufunc.reduce(values[lo:hi])`` for every window; empty windows give garbage (mask them)."""
    if lo.size == 0:
        return np.zeros(lo.shape)
    extended = np.append(values, 0.0)  # so that hi == len(values) is a valid index
    indices = np.empty(lo.size * 2, dtype=np.int64)
    indices[0::2] = lo.ravel()
    indices[1::2] = hi.ravel()
    reduced: Floats = ufunc.reduceat(extended, indices)[0::2]
    return reduced.reshape(lo.shape)


def _at(values: Floats | Ints, index: Ints, present: Bools) -> Floats:
    """``values[index]`` where present (index clipped elsewhere so it never goes out of range)."""
    safe = np.where(present, index, 0)
    if len(values) == 0:
        return np.zeros(index.shape)
    return values[safe].astype(np.float64)


def extrapolated_rate(r: RangeSteps, *, is_counter: bool, is_rate: bool) -> Result:
    """``rate``, ``increase`` and ``delta`` with Prometheus's extrapolation to the window edges."""
    counts = _counts(r)
    present = counts >= 2
    first_v = _at(r.vs, r.lo, present)
    last_v = _at(r.vs, r.hi - 1, present)
    first_t = _at(r.ts, r.lo, present)
    last_t = _at(r.ts, r.hi - 1, present)
    with np.errstate(all="ignore"):
        result = last_v - first_v
        if is_counter and len(r.vs) > 1:
            # A drop between neighbours is a counter reset: the value before it was lost.
            dropped = np.zeros(len(r.vs))
            drops = r.vs[1:] < r.vs[:-1]
            dropped[1:] = np.where(drops, r.vs[:-1], 0.0)
            dropped[r.offsets[:-1][r.offsets[:-1] < len(r.vs)]] = 0.0  # series boundaries
            cumulative = np.cumsum(dropped)
            result = result + _at(cumulative, r.hi - 1, present) - _at(cumulative, r.lo, present)
        range_start = (r.window_ends - r.range_ms).astype(np.float64)[None, :]
        range_end = r.window_ends.astype(np.float64)[None, :]
        to_start = (first_t - range_start) / 1000.0
        to_end = (range_end - last_t) / 1000.0
        sampled = (last_t - first_t) / 1000.0
        average_gap = sampled / np.maximum(counts - 1, 1)
        threshold = average_gap * 1.1
        to_start = np.where(to_start >= threshold, average_gap / 2, to_start)
        if is_counter:
            # A counter cannot have been below zero: do not extrapolate past that point.
            to_zero = sampled * (first_v / result)
            limit = (result > 0) & (first_v >= 0) & (to_zero < to_start)
            to_start = np.where(limit, to_zero, to_start)
        to_end = np.where(to_end >= threshold, average_gap / 2, to_end)
        factor = (sampled + to_start + to_end) / sampled
        if is_rate:
            factor = factor / (r.range_ms / 1000.0)
        values: Floats = result * factor
    return values, present


def instant_rate(r: RangeSteps, *, is_rate: bool) -> Result:
    """``irate`` / ``idelta``: from the last two samples of each window."""
    counts = _counts(r)
    present = counts >= 2
    last_v = _at(r.vs, r.hi - 1, present)
    prev_v = _at(r.vs, r.hi - 2, present)
    last_t = _at(r.ts, r.hi - 1, present)
    prev_t = _at(r.ts, r.hi - 2, present)
    with np.errstate(all="ignore"):
        if is_rate:
            diff = np.where(last_v < prev_v, last_v, last_v - prev_v)
            interval = (last_t - prev_t) / 1000.0
            present = present & (interval != 0)
            values: Floats = diff / interval
        else:
            values = last_v - prev_v
    return values, present


def count_over_time(r: RangeSteps) -> Result:
    counts = _counts(r)
    return counts.astype(np.float64), counts > 0


def present_over_time(r: RangeSteps) -> Result:
    counts = _counts(r)
    return np.ones(counts.shape), counts > 0


def last_over_time(r: RangeSteps) -> Result:
    present = _counts(r) > 0
    return _at(r.vs, r.hi - 1, present), present


def first_over_time(r: RangeSteps) -> Result:
    present = _counts(r) > 0
    return _at(r.vs, r.lo, present), present


def ts_of_last_over_time(r: RangeSteps) -> Result:
    present = _counts(r) > 0
    return _at(r.ts, r.hi - 1, present) / 1000.0, present


def sum_over_time(r: RangeSteps) -> Result:
    present = _counts(r) > 0
    with np.errstate(all="ignore"):
        values = reduce_windows(np.add, r.vs, r.lo, r.hi)
    return _fix_inexact_sums(r, values, present, _window_sum), present


def avg_over_time(r: RangeSteps) -> Result:
    counts = _counts(r)
    present = counts > 0
    with np.errstate(all="ignore"):
        values = reduce_windows(np.add, r.vs, r.lo, r.hi) / np.maximum(counts, 1)
    return _fix_inexact_sums(r, values, present, _window_mean), present


def _fix_inexact_sums(
    r: RangeSteps, values: Floats, present: Bools, exact: Callable[[Floats], float]
) -> Floats:
    """Recompute windows where a plain sum may be off: overflow, huge values cancelling."""
    if len(r.vs) == 0:
        return values
    magnitude = np.abs(r.vs[np.isfinite(r.vs)])
    if magnitude.size and magnitude.max() < 1e15 and np.isfinite(values[present]).all():
        return values
    for s, j in zip(*np.nonzero(present), strict=True):
        values[s, j] = exact(r.vs[r.lo[s, j] : r.hi[s, j]])
    return values


def _window_sum(window: Floats) -> float:
    return kahan.kahan_sum(window.tolist())


def _window_mean(window: Floats) -> float:
    return kahan.kahan_mean(window.tolist())


def min_over_time(r: RangeSteps) -> Result:
    present = _counts(r) > 0
    return reduce_windows(np.fmin, r.vs, r.lo, r.hi), present


def max_over_time(r: RangeSteps) -> Result:
    present = _counts(r) > 0
    return reduce_windows(np.fmax, r.vs, r.lo, r.hi), present


def changes(r: RangeSteps) -> Result:
    return _pair_count(r, lambda prev, cur: ~((cur == prev) | (np.isnan(cur) & np.isnan(prev))))


def resets(r: RangeSteps) -> Result:
    return _pair_count(r, lambda prev, cur: cur < prev)


def _pair_count(r: RangeSteps, event: Callable[[Floats, Floats], Bools]) -> Result:
    """How many neighbouring pairs inside each window satisfy ``event(prev, cur)``."""
    counts = _counts(r)
    present = counts > 0
    flags = np.zeros(len(r.vs))
    if len(r.vs) > 1:
        flags[1:] = event(r.vs[:-1], r.vs[1:])
        flags[r.offsets[:-1][r.offsets[:-1] < len(r.vs)]] = 0.0
    cumulative = np.cumsum(flags)
    values = _at(cumulative, r.hi - 1, present) - _at(cumulative, r.lo, present)
    return values, present


def per_window(
    r: RangeSteps, fn: Callable[[Ints, Floats, int], float | None], *, min_samples: int = 1
) -> Result:
    """Apply ``fn(timestamps, values, step)`` window by window; None means no result."""
    values = np.full(r.lo.shape, np.nan)
    present = np.zeros(r.lo.shape, dtype=bool)
    counts = _counts(r)
    for s, j in zip(*np.nonzero(counts >= min_samples), strict=True):
        lo, hi = r.lo[s, j], r.hi[s, j]
        result = fn(r.ts[lo:hi], r.vs[lo:hi], int(j))
        if result is not None:
            values[s, j] = result
            present[s, j] = True
    return values, present


def stdvar_over_time(r: RangeSteps) -> Result:
    return per_window(r, lambda _t, v, _j: _variance(v))


def stddev_over_time(r: RangeSteps) -> Result:
    return per_window(r, lambda _t, v, _j: math.sqrt(_variance(v)))


def _variance(values: Floats) -> float:
    return kahan.kahan_variance(values.tolist())


def mad_over_time(r: RangeSteps) -> Result:
    def mad(_t: Ints, v: Floats, _j: int) -> float:
        median = quantile(0.5, v)
        return quantile(0.5, np.abs(v - median))

    return per_window(r, mad)


def quantile(q: float, values: Floats) -> float:
    """Prometheus's quantile: linear interpolation between the closest ranks."""
    if len(values) == 0 or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = np.sort(values)  # NaN sorts last, as in Prometheus
    rank = q * (len(ordered) - 1)
    lower = max(0, math.floor(rank))
    upper = min(len(ordered) - 1, lower + 1)
    weight = rank - math.floor(rank)
    return float(ordered[lower] * (1 - weight) + ordered[upper] * weight)


def quantile_over_time(r: RangeSteps, q: Floats, annotate: Annotate) -> Result:
    check_quantiles(q, annotate)
    return per_window(r, lambda _t, v, j: quantile(float(q[j]), v))


def linear_regression(timestamps: Ints, values: Floats, intercept_ms: int) -> tuple[float, float]:
    """Least-squares slope (per second) and intercept at ``intercept_ms``."""
    if (values == values[0]).all():
        if math.isinf(values[0]):
            return math.nan, math.nan
        return 0.0, float(values[0])
    x = (timestamps - intercept_ms).astype(np.float64) / 1000.0
    n = len(values)
    with np.errstate(all="ignore"):
        sum_x = kahan.kahan_sum(x.tolist())
        sum_y = kahan.kahan_sum(values.tolist())
        sum_xy = kahan.kahan_sum((x * values).tolist())
        sum_x2 = kahan.kahan_sum((x * x).tolist())
    cov_xy = sum_xy - sum_x * sum_y / n
    var_x = sum_x2 - sum_x * sum_x / n
    slope = cov_xy / var_x if var_x != 0 else math.nan
    intercept = sum_y / n - slope * sum_x / n
    return slope, intercept


def deriv(r: RangeSteps) -> Result:
    return per_window(r, lambda t, v, _j: linear_regression(t, v, int(t[0]))[0], min_samples=2)


def predict_linear(r: RangeSteps, duration_s: Floats, eval_times: Ints) -> Result:
    def predict(t: Ints, v: Floats, j: int) -> float:
        slope, intercept = linear_regression(t, v, int(eval_times[j]))
        return slope * float(duration_s[j]) + intercept

    return per_window(r, predict, min_samples=2)


def double_exponential_smoothing(r: RangeSteps, smoothing: Floats, trend: Floats) -> Result:
    for name, factors in (("smoothing", smoothing), ("trend", trend)):
        bad = factors[(factors <= 0) | (factors >= 1) | np.isnan(factors)]
        if bad.size:
            raise QueryError(
                f"invalid {name} factor. Expected: 0 < {name[0]}f < 1, got: {bad[0]:f}"
            )

    def smooth(_t: Ints, v: Floats, j: int) -> float:
        sf, tf = float(smoothing[j]), float(trend[j])
        level_prev, level = 0.0, float(v[0])
        slope = float(v[1] - v[0])
        for i in range(1, len(v)):
            if i > 1:
                slope = tf * (level - level_prev) + (1 - tf) * slope
            level_prev, level = level, sf * float(v[i]) + (1 - sf) * (level + slope)
        return level

    return per_window(r, smooth, min_samples=2)


def _extreme_timestamp(r: RangeSteps, pick_max: bool) -> Result:
    def timestamp_of(t: Ints, v: Floats, _j: int) -> float:
        finite = ~np.isnan(v)
        if not finite.any():
            return float(t[-1]) / 1000.0
        candidates = np.where(finite, v, -np.inf if pick_max else np.inf)
        best = candidates.max() if pick_max else candidates.min()
        # The latest timestamp among equal extremes, as Prometheus reports.
        index = int(np.flatnonzero(candidates == best)[-1])
        return float(t[index]) / 1000.0

    return per_window(r, timestamp_of)


def ts_of_max_over_time(r: RangeSteps) -> Result:
    return _extreme_timestamp(r, True)


def ts_of_min_over_time(r: RangeSteps) -> Result:
    return _extreme_timestamp(r, False)
