"""Compensated sums and means as Prometheus computes them, so results agree to the last bit
where plain floating-point sums would not (huge values that cancel, sums that overflow).

The vectorized variants run over the rows of a ``(series, steps)`` array, all steps at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from opsbook.metrics.promql.values import Bools, Floats


def kahan_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    """One step of Neumaier's improved Kahan summation."""
    t = total + inc
    if math.isinf(t):
        c = 0.0
    elif abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


def kahan_sum(values: Iterable[float]) -> float:
    total = c = 0.0
    for value in values:
        total, c = kahan_inc(value, total, c)
    return total + c


def kahan_mean(values: Iterable[float]) -> float:
    """The mean; a sum that would overflow switches to an incremental mean."""
    total = c = mean = 0.0
    incremental = False
    count = 0.0
    for value in values:
        count += 1
        if not incremental:
            new_total, new_c = kahan_inc(value, total, c)
            if count == 1 or not math.isinf(new_total):
                total, c = new_total, new_c
                continue
            incremental = True
            mean = total / (count - 1)
            c /= count - 1
        q = (count - 1) / count
        mean, c = kahan_inc(value / count, q * mean, q * c)
    if incremental:
        return mean + c
    return total / count + c / count


def kahan_variance(values: Iterable[float]) -> float:
    """Population variance with Welford's method and compensated sums."""
    count = mean = c_mean = aux = c_aux = 0.0
    for value in values:
        count += 1
        delta = value - (mean + c_mean)
        mean, c_mean = kahan_inc(delta / count, mean, c_mean)
        aux, c_aux = kahan_inc(delta * (value - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def kahan_inc_arrays(inc: Floats, total: Floats, c: Floats) -> tuple[Floats, Floats]:
    with np.errstate(all="ignore"):
        t = total + inc
        bigger = np.abs(total) >= np.abs(inc)
        c = c + np.where(bigger, (total - t) + inc, (inc - t) + total)
        c = np.where(np.isinf(t), 0.0, c)
    return t, c


def sum_rows(values: Floats, present: Bools) -> Floats:
    """Compensated column sums over the present cells."""
    total = np.zeros(values.shape[1])
    c = np.zeros(values.shape[1])
    for row in range(values.shape[0]):
        inc = np.where(present[row], values[row], 0.0)
        total, c = kahan_inc_arrays(inc, total, c)
    result: Floats = total + c
    return result


def mean_rows(values: Floats, present: Bools) -> Floats:
    """Column means of the present cells, as Prometheus's ``avg`` computes them."""
    steps = values.shape[1]
    total, c, mean = np.zeros(steps), np.zeros(steps), np.zeros(steps)
    count = np.zeros(steps)
    incremental = np.zeros(steps, dtype=bool)
    with np.errstate(all="ignore"):
        for row in range(values.shape[0]):
            here = present[row]
            value = values[row]
            count = count + here
            new_total, new_c = kahan_inc_arrays(np.where(here, value, 0.0), total, c)
            switch = here & ~incremental & (count > 1) & np.isinf(new_total) & ~np.isinf(value)
            keep_sum = here & ~incremental & ~switch
            total = np.where(keep_sum, new_total, total)
            c = np.where(keep_sum, new_c, c)
            previous = np.maximum(count - 1, 1)
            mean = np.where(switch, total / previous, mean)
            c = np.where(switch, c / previous, c)
            incremental |= switch
            step_mean = here & incremental
            q = (count - 1) / np.maximum(count, 1)
            new_mean, newer_c = kahan_inc_arrays(value / np.maximum(count, 1), q * mean, q * c)
            mean = np.where(step_mean, new_mean, mean)
            c = np.where(step_mean, newer_c, c)
        safe = np.maximum(count, 1)
        result: Floats = np.where(incremental, mean + c, total / safe + c / safe)
    return result


def variance_rows(values: Floats, present: Bools) -> Floats:
    """Column population variances with Welford's method, as Prometheus's ``stdvar``."""
    steps = values.shape[1]
    count, mean, aux = np.zeros(steps), np.zeros(steps), np.zeros(steps)
    with np.errstate(all="ignore"):
        for row in range(values.shape[0]):
            here = present[row]
            count = count + here
            delta = values[row] - mean
            new_mean = mean + delta / np.maximum(count, 1)
            aux = np.where(here, aux + delta * (values[row] - new_mean), aux)
            mean = np.where(here, new_mean, mean)
        result: Floats = aux / np.maximum(count, 1)
    return result
