"""Functions over instant vectors: math, clamping, dates, labels, ``histogram_quantile``."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np

from opsbook.metrics.model import METRIC_NAME, Labels, is_valid_label_name, label_value, with_label
from opsbook.metrics.promql.annotations import Annotate, check_quantiles
from opsbook.metrics.promql.values import (
    DUPLICATE_LABELSET,
    Bools,
    Floats,
    VectorSteps,
    drop_metric_name,
    merge_same_labels,
)
from opsbook.metrics.query import QueryError


def _rad(v: Floats) -> Floats:
    return v * (math.pi / 180)


def _deg(v: Floats) -> Floats:
    return v * (180 / math.pi)


MATH: dict[str, Callable[[Floats], Floats]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sgn": np.sign,
    "acos": np.arccos,
    "acosh": np.arccosh,
    "asin": np.arcsin,
    "asinh": np.arcsinh,
    "atan": np.arctan,
    "atanh": np.arctanh,
    "cos": np.cos,
    "cosh": np.cosh,
    "sin": np.sin,
    "sinh": np.sinh,
    "tan": np.tan,
    "tanh": np.tanh,
    "deg": _deg,
    "rad": _rad,
}


def apply_math(name: str, vector: VectorSteps) -> VectorSteps:
    with np.errstate(all="ignore"):
        values = MATH[name](vector.values)
    return _dropping_names(vector, values)


def _dropping_names(
    vector: VectorSteps, values: Floats, present: Bools | None = None
) -> VectorSteps:
    labels = [drop_metric_name(labels) for labels in vector.labels]
    result = VectorSteps(labels, values, vector.present.copy() if present is None else present)
    return merge_same_labels(result, DUPLICATE_LABELSET)


def round_to(vector: VectorSteps, to_nearest: Floats) -> VectorSteps:
    with np.errstate(all="ignore"):
        inverse = 1.0 / to_nearest[None, :]
        values = np.floor(vector.values * inverse + 0.5) / inverse
    return _dropping_names(vector, values)


def clamp(vector: VectorSteps, low: Floats | None, high: Floats | None) -> VectorSteps:
    values = vector.values
    present = vector.present.copy()
    if low is not None:
        values = np.maximum(values, low[None, :])
    if high is not None:
        values = np.minimum(values, high[None, :])
    if low is not None and high is not None:
        present &= ~(high < low)[None, :]  # clamp(v, 5, 1) is empty
    return _dropping_names(vector, values, present)


# --- dates -----------------------------------------------------------------------------------


def _floats(values: np.ndarray) -> Floats:
    result: Floats = values.astype(np.float64)
    return result


def _civil(seconds: Floats) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    whole = np.trunc(np.where(np.isfinite(seconds), seconds, 0)).astype(np.int64)
    instant = whole.astype("datetime64[s]")
    day = instant.astype("datetime64[D]")
    month = day.astype("datetime64[M]")
    year = day.astype("datetime64[Y]")
    return instant, day, month, year


def _minute(s: Floats) -> Floats:
    return (np.trunc(s).astype(np.int64) // 60 % 60).astype(np.float64)


def _hour(s: Floats) -> Floats:
    return (np.trunc(s).astype(np.int64) // 3600 % 24).astype(np.float64)


def _day_of_week(s: Floats) -> Floats:
    _, day, _, _ = _civil(s)
    return ((day.astype(np.int64) + 4) % 7).astype(np.float64)


def _day_of_month(s: Floats) -> Floats:
    _, day, month, _ = _civil(s)
    return _floats((day - month.astype("datetime64[D]")).astype(np.int64) + 1)


def _day_of_year(s: Floats) -> Floats:
    _, day, _, year = _civil(s)
    return _floats((day - year.astype("datetime64[D]")).astype(np.int64) + 1)


def _days_in_month(s: Floats) -> Floats:
    _, _, month, _ = _civil(s)
    start = month.astype("datetime64[D]")
    end = (month + 1).astype("datetime64[D]")
    return _floats((end - start).astype(np.int64))


def _month(s: Floats) -> Floats:
    _, _, month, year = _civil(s)
    return _floats((month - year.astype("datetime64[M]")).astype(np.int64) + 1)


def _year(s: Floats) -> Floats:
    _, _, _, year = _civil(s)
    return (year.astype(np.int64) + 1970).astype(np.float64)


DATES: dict[str, Callable[[Floats], Floats]] = {
    "minute": _minute,
    "hour": _hour,
    "day_of_week": _day_of_week,
    "day_of_month": _day_of_month,
    "day_of_year": _day_of_year,
    "days_in_month": _days_in_month,
    "month": _month,
    "year": _year,
}


def apply_date(name: str, vector: VectorSteps) -> VectorSteps:
    finite = np.isfinite(vector.values)
    safe = np.where(finite, vector.values, 0.0)
    with np.errstate(all="ignore"):
        values = np.where(finite, DATES[name](safe), np.nan)
    return _dropping_names(vector, values)


# --- labels ----------------------------------------------------------------------------------


def label_replace(
    vector: VectorSteps, destination: str, replacement: str, source: str, regex: str
) -> VectorSteps:
    try:
        pattern = re.compile(f"(?s:{regex})\\Z")
    except re.error:
        raise QueryError(f'invalid regular expression in label_replace(): "{regex}"') from None
    if not is_valid_label_name(destination):
        raise QueryError(f'invalid destination label name in label_replace(): "{destination}"')
    template = _go_template(replacement)
    labels: list[Labels] = []
    for series in vector.labels:
        match = pattern.match(label_value(series, source))
        if match is None:
            labels.append(series)
            continue
        value = template(match)
        labels.append(with_label(series, destination, value))
    result = VectorSteps(labels, vector.values, vector.present, None)
    return merge_same_labels(result, DUPLICATE_LABELSET)


_TEMPLATE_TOKEN = re.compile(r"\$(?:\{(\w+)\}|(\w+)|\$)")


def _go_template(replacement: str) -> Callable[[re.Match[str]], str]:
    """Go's ``Regexp.Expand``: ``$1``, ``${1}``, ``$name``, ``$$``; unknown groups expand to ""."""

    def expand(match: re.Match[str]) -> str:
        def one(token: re.Match[str]) -> str:
            if token.group(0) == "$$":
                return "$"
            name = token.group(1) or token.group(2)
            if name.isdigit():
                index = int(name)
                if index > (match.re.groups or 0):
                    return ""
                return match.group(index) or ""
            if token.group(2) is not None and not re.fullmatch(r"[A-Za-z_]\w*", name):
                # "$1x" is the group named "1x" in Go, which does not exist.
                return ""
            try:
                return match.group(name) or ""
            except IndexError:  # no such named group: Go expands it to ""
                return ""

        return _TEMPLATE_TOKEN.sub(one, replacement)

    return expand


def label_join(
    vector: VectorSteps, destination: str, separator: str, sources: list[str]
) -> VectorSteps:
    if not is_valid_label_name(destination):
        raise QueryError(f'invalid destination label name in label_join(): "{destination}"')
    labels = [
        with_label(series, destination, separator.join(label_value(series, s) for s in sources))
        for series in vector.labels
    ]
    result = VectorSteps(labels, vector.values, vector.present, None)
    return merge_same_labels(result, DUPLICATE_LABELSET)


# --- histogram_quantile over classic buckets ------------------------------------------------


def histogram_quantile(q: Floats, vector: VectorSteps, annotate: Annotate) -> VectorSteps:
    groups: dict[Labels, list[tuple[float, int]]] = {}
    for row, series in enumerate(vector.labels):
        raw = label_value(series, "le")
        try:
            upper = float(raw)  # accepts +Inf, Inf, -Inf and NaN in any case, as Go's ParseFloat
        except ValueError:
            name = label_value(series, METRIC_NAME)
            annotate(
                "warning",
                f'PromQL warning: bucket label "le" is missing or has a malformed value of '
                f'"{raw}" for metric name "{name}"',
            )
            continue
        key = tuple(pair for pair in series if pair[0] != "le")
        groups.setdefault(key, []).append((upper, row))
    steps = vector.steps()
    labels = list(groups)
    values = np.full((len(labels), steps), np.nan)
    present = np.zeros((len(labels), steps), dtype=bool)
    check_quantiles(q, annotate)
    for out, key in enumerate(labels):
        buckets = sorted(groups[key])
        bounds = np.array([upper for upper, _ in buckets])
        rows = [row for _, row in buckets]
        counts = vector.values[rows]
        have = vector.present[rows]
        for j in range(steps):
            mask = have[:, j]
            if not mask.any():
                continue
            result, fixed = _bucket_quantile(float(q[j]), bounds[mask], counts[mask, j])
            if fixed:
                annotate(
                    "info",
                    "PromQL info: input to histogram_quantile needed to be fixed for "
                    "monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/"
                    "functions/#histogram_quantile) for metric name "
                    f'"{label_value(vector.labels[rows[0]], METRIC_NAME)}"',
                )
            values[out, j] = result
            present[out, j] = True
    quantiles = VectorSteps([drop_metric_name(key) for key in labels], values, present)
    return merge_same_labels(quantiles.compact(), DUPLICATE_LABELSET)


def _bucket_quantile(q: float, bounds: Floats, counts: Floats) -> tuple[float, bool]:
    """The quantile from cumulative bucket counts sorted by upper bound; and whether the counts
    had to be made monotonic first."""
    if math.isnan(q):
        return math.nan, False
    if q < 0:
        return -math.inf, False
    if q > 1:
        return math.inf, False
    if len(bounds) == 0 or not math.isinf(bounds[-1]) or bounds[-1] < 0:
        return math.nan, False
    # Buckets with the same bound (e.g. "1" and "1.0") are one bucket.
    unique_bounds, starts = np.unique(bounds, return_index=True)
    if len(unique_bounds) != len(bounds):
        counts = np.add.reduceat(counts, starts)
        bounds = unique_bounds
    fixed = False
    running = np.fmax.accumulate(counts)
    if (running != counts).any():
        # Decreases smaller than float noise are silently levelled, as Prometheus does.
        significant = (running - counts) > 1e-12 * np.abs(running)
        fixed = bool(significant.any())
        counts = running
    if len(bounds) < 2:
        return math.nan, fixed
    observations = counts[-1]
    if observations == 0 or math.isnan(observations):
        return math.nan, fixed
    rank = q * observations
    bucket = int(np.searchsorted(counts, rank, side="left"))
    bucket = min(bucket, len(counts) - 1)
    if bucket == len(bounds) - 1:
        return float(bounds[-2]), fixed
    if bucket == 0 and bounds[0] <= 0:
        return float(bounds[0]), fixed
    start = 0.0
    end = float(bounds[bucket])
    count = float(counts[bucket])
    if bucket > 0:
        start = float(bounds[bucket - 1])
        count -= float(counts[bucket - 1])
        rank -= float(counts[bucket - 1])
    return start + (end - start) * (rank / count), fixed
