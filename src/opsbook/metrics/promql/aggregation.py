"""Aggregation operators: ``sum``, ``avg``, ``topk``, ``quantile``, ``count_values``, ..."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from opsbook.metrics.model import METRIC_NAME, Labels, is_valid_label_name
from opsbook.metrics.promjson import format_value
from opsbook.metrics.promql import kahan
from opsbook.metrics.promql.annotations import Annotate, check_quantiles
from opsbook.metrics.promql.range_functions import quantile
from opsbook.metrics.promql.values import Floats, VectorSteps
from opsbook.metrics.query import QueryError


def group_keys(labels: Sequence[Labels], names: Sequence[str], without: bool) -> list[Labels]:
    """The output labels of each input series' group."""
    if without:
        drop = set(names) | {METRIC_NAME}
        return [tuple(p for p in series if p[0] not in drop) for series in labels]
    keep = set(names)
    return [tuple(p for p in series if p[0] in keep) for series in labels]


def _groups(keys: list[Labels]) -> dict[Labels, list[int]]:
    groups: dict[Labels, list[int]] = {}
    for row, key in enumerate(keys):
        groups.setdefault(key, []).append(row)
    return groups


def aggregate(
    op: str,
    vector: VectorSteps,
    keys: list[Labels],
    param: Floats | str | None,
    annotate: Annotate,
) -> VectorSteps:
    steps = vector.steps()
    if op in ("topk", "bottomk", "limitk"):
        assert isinstance(param, np.ndarray)
        return _select_k(op, vector, keys, param)
    if op == "limit_ratio":
        assert isinstance(param, np.ndarray)
        return _limit_ratio(vector, param)
    if op == "count_values":
        assert isinstance(param, str)
        return _count_values(vector, keys, param)
    groups = _groups(keys)
    out_labels = list(groups)
    values = np.full((len(out_labels), steps), np.nan)
    present = np.zeros((len(out_labels), steps), dtype=bool)
    if op == "quantile":
        assert isinstance(param, np.ndarray)
        check_quantiles(param, annotate)
    with np.errstate(all="ignore"):
        for out, rows in enumerate(groups.values()):
            v = vector.values[rows]
            p = vector.present[rows]
            count = p.sum(axis=0)
            present[out] = count > 0
            if op == "sum":
                values[out] = _sum(v, p)
            elif op == "avg":
                values[out] = _mean(v, p, count)
            elif op == "count":
                values[out] = count
            elif op == "group":
                values[out] = 1.0
            elif op == "min":
                values[out] = np.fmin.reduce(np.where(p, v, np.nan), axis=0)
            elif op == "max":
                values[out] = np.fmax.reduce(np.where(p, v, np.nan), axis=0)
            elif op in ("stddev", "stdvar"):
                variance = kahan.variance_rows(v, p)
                values[out] = np.sqrt(variance) if op == "stddev" else variance
            elif op == "quantile":
                assert isinstance(param, np.ndarray)
                for j in np.flatnonzero(present[out]):
                    values[out, j] = quantile(float(param[j]), v[p[:, j], j])
            else:
                raise QueryError(f"unsupported aggregation operator {op!r}")
    return VectorSteps(out_labels, values, present)


def _exact_needed(v: Floats, p: np.ndarray) -> bool:
    """Whether a plain sum could differ from Prometheus's compensated one."""
    masked = np.where(p, v, 0.0)
    return not (np.isfinite(masked).all() and np.abs(masked).max(initial=0.0) < 1e15)


def _sum(v: Floats, p: np.ndarray) -> Floats:
    if _exact_needed(v, p):
        return kahan.sum_rows(v, p)
    total: Floats = np.where(p, v, 0.0).sum(axis=0)
    return total


def _mean(v: Floats, p: np.ndarray, count: np.ndarray) -> Floats:
    if _exact_needed(v, p):
        return kahan.mean_rows(v, p)
    mean: Floats = np.where(p, v, 0.0).sum(axis=0) / np.maximum(count, 1)
    return mean


def _select_k(op: str, vector: VectorSteps, keys: list[Labels], k: Floats) -> VectorSteps:
    """topk/bottomk/limitk: the input series themselves, present where they are selected."""
    steps = vector.steps()
    groups = _groups(keys)
    selected = np.zeros(vector.present.shape, dtype=bool)
    rank = np.zeros(vector.present.shape)
    for j in range(steps):
        if math.isnan(k[j]):
            raise QueryError("Parameter value is NaN")
        limit = int(min(k[j], 2**62)) if k[j] >= 1 else 0
        if limit <= 0:
            continue
        for rows in groups.values():
            candidates = [r for r in rows if vector.present[r, j]]
            if op != "limitk":
                column = vector.values[:, j]
                candidates.sort(key=lambda r: _order_key(float(column[r]), op))
            for position, row in enumerate(candidates[:limit]):
                selected[row, j] = True
                rank[row, j] = position
    result = VectorSteps(vector.labels, vector.values.copy(), selected, None).compact()
    if steps == 1 and op != "limitk":
        # An instant query returns each group's series in order of rank.
        order_of = {labels: i for i, labels in enumerate(vector.labels)}
        group_index = {row: g for g, rows in enumerate(groups.values()) for row in rows}
        rows = [order_of[labels] for labels in result.labels]
        ordering = sorted(range(len(rows)), key=lambda i: (group_index[rows[i]], rank[rows[i], 0]))
        result = VectorSteps(
            [result.labels[i] for i in ordering],
            result.values[ordering],
            result.present[ordering],
        )
    return result


def _order_key(value: float, op: str) -> tuple[int, float]:
    # NaN ranks last for both topk and bottomk.
    if math.isnan(value):
        return (1, 0.0)
    return (0, -value if op == "topk" else value)


def _limit_ratio(vector: VectorSteps, ratio: Floats) -> VectorSteps:
    """Keep a deterministic sample of series: those whose label hash falls under the ratio."""
    present = vector.present.copy()
    for row, labels in enumerate(vector.labels):
        position = (hash(labels) % 1_000_003) / 1_000_003
        keep = np.where(ratio >= 0, position < ratio, position >= 1 + ratio)
        present[row] &= keep
    return VectorSteps(vector.labels, vector.values, present).compact()


def _count_values(vector: VectorSteps, keys: list[Labels], label: str) -> VectorSteps:
    if not is_valid_label_name(label):
        raise QueryError(f"invalid label name {label!r}")
    counts: dict[Labels, np.ndarray] = {}
    steps = vector.steps()
    for row, key in enumerate(keys):
        for j in np.flatnonzero(vector.present[row]):
            text = format_value(float(vector.values[row, j]))
            out = tuple(sorted([p for p in key if p[0] != label] + [(label, text)]))
            if out not in counts:
                counts[out] = np.zeros(steps)
            counts[out][j] += 1
    labels = list(counts)
    values = np.array([counts[k] for k in labels]).reshape(len(labels), steps)
    return VectorSteps(labels, values, values > 0)
