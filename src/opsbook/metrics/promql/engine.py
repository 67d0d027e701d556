"""The PromQL evaluator: walks ``promql-parser``'s AST and evaluates it with NumPy.

Every node is evaluated at all steps of the query at once (an instant query is a range query
with one step), so a selector reads its series from the store once per query, not once per step.
Semantics are Prometheus 3.x's for floats: left-open range windows ``(t - range, t]``, a 5-minute
lookback that excludes a sample exactly 5 minutes old, stale markers ending a series.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import promql_parser as ast

from opsbook.metrics.model import (
    METRIC_NAME,
    Labels,
    Matcher,
    MatchType,
    RangeSummary,
    SeriesData,
    SeriesSource,
    SummarySource,
    metric_name,
    stale_mask,
)
from opsbook.metrics.promql import aggregation, binary, instant_functions, range_functions
from opsbook.metrics.promql.parser import matchers_of, or_matcher_sets, parse_expr
from opsbook.metrics.promql.values import (
    DUPLICATE_LABELSET,
    Floats,
    Ints,
    RangeSteps,
    ScalarSteps,
    StringValue,
    Value,
    VectorSteps,
    drop_metric_name,
    merge_same_labels,
)
from opsbook.metrics.query import (
    BadQueryRequest,
    Matrix,
    MatrixSeries,
    QueryError,
    QueryResult,
    QueryTimeout,
    QueryTooExpensive,
    Sample,
    Scalar,
    String,
    Vector,
)

DEFAULT_SUBQUERY_STEP_MS = 60_000
COUNTER_SUFFIXES = ("_total", "_sum", "_count", "_bucket")
# Windows at least this long, at few steps, are answered from the store's rollups.
SUMMARY_MIN_RANGE_MS = 3 * 3600 * 1000
SUMMARY_MAX_STEPS = 4


@dataclass(frozen=True, slots=True)
class EngineOptions:
    lookback_ms: int = 300_000
    max_samples: int = 50_000_000
    """Most samples one query may hold at once; more fails the query instead of the server."""
    timeout_s: float = 120.0
    max_points: int = 11_000
    """Most steps of a range query, as Prometheus allows."""


class Engine:
    """Evaluates PromQL against a :class:`~opsbook.metrics.model.SeriesSource`."""

    def __init__(self, source: SeriesSource, options: EngineOptions | None = None) -> None:
        self.source = source
        self.options = options or EngineOptions()

    def instant_query(self, expr: str, time_ms: int) -> QueryResult:
        node = parse_expr(expr)
        evaluation = _Evaluation(self.source, self.options, time_ms, time_ms)
        value = evaluation.eval(node, np.array([time_ms], dtype=np.int64))
        return QueryResult(_instant_result(value, time_ms), evaluation.warnings, evaluation.infos)

    def range_query(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> QueryResult:
        if step_ms <= 0:
            raise BadQueryRequest(
                "zero or negative query resolution step widths are not accepted. "
                "Try a positive integer"
            )
        if end_ms < start_ms:
            raise BadQueryRequest("end timestamp must not be before start time")
        if (end_ms - start_ms) // step_ms + 1 > self.options.max_points:
            raise BadQueryRequest(
                f"exceeded maximum resolution of {self.options.max_points:,} points per "
                "timeseries. Try decreasing the query resolution (?step=XX)"
            )
        node = parse_expr(expr)
        steps = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
        evaluation = _Evaluation(self.source, self.options, start_ms, end_ms)
        value = evaluation.eval(node, steps)
        if isinstance(value, ScalarSteps):
            series = [MatrixSeries((), steps, value.values)]
            return QueryResult(Matrix(series), evaluation.warnings, evaluation.infos)
        if not isinstance(value, VectorSteps):
            kind = "range vector" if isinstance(value, RangeSteps) else "string"
            raise BadQueryRequest(
                f'invalid expression type "{kind}" for range query, must be Scalar or instant '
                "Vector"
            )
        matrix = []
        for row in range(len(value)):
            mask = value.present[row]
            if mask.any():
                matrix.append(MatrixSeries(value.labels[row], steps[mask], value.values[row][mask]))
        matrix.sort(key=lambda s: s.labels)
        return QueryResult(Matrix(matrix), evaluation.warnings, evaluation.infos)


def _instant_result(value: Value, time_ms: int) -> Any:
    if isinstance(value, ScalarSteps):
        return Scalar(time_ms, float(value.values[0]))
    if isinstance(value, StringValue):
        return String(time_ms, value.value)
    if isinstance(value, VectorSteps):
        samples = [
            Sample(value.labels[row], time_ms, float(value.values[row, 0]))
            for row in range(len(value))
            if value.present[row, 0]
        ]
        return Vector(samples)
    series = []
    for row in range(len(value)):
        lo, hi = int(value.lo[row, 0]), int(value.hi[row, 0])
        if hi > lo:
            series.append(MatrixSeries(value.labels[row], value.ts[lo:hi], value.vs[lo:hi]))
    return Matrix(series)


@dataclass
class _Evaluation:
    source: SeriesSource
    options: EngineOptions
    start_ms: int
    end_ms: int
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
    samples: int = 0
    deadline: float = 0.0

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.options.timeout_s

    # --- bookkeeping -------------------------------------------------------------------------

    def annotate(self, kind: str, message: str) -> None:
        target = self.warnings if kind == "warning" else self.infos
        if message not in target:
            target.append(message)

    def _check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise QueryTimeout("query timed out in expression evaluation")

    def _account(self, count: int) -> None:
        self.samples += count
        if self.samples > self.options.max_samples:
            raise QueryTooExpensive(
                "query processing would load too many samples into memory in query execution"
            )

    # --- dispatch ----------------------------------------------------------------------------

    def eval(self, node: Any, steps: Ints) -> Value:
        self._check_deadline()
        if isinstance(node, ast.NumberLiteral):
            return ScalarSteps(np.full(len(steps), float(node.val)))
        if isinstance(node, ast.StringLiteral):
            return StringValue(node.val)
        if isinstance(node, ast.ParenExpr):
            return self.eval(node.expr, steps)
        if isinstance(node, ast.UnaryExpr):
            return self._negate(self.eval(node.expr, steps))
        if isinstance(node, ast.VectorSelector):
            return self._vector_selector(node, steps)
        if isinstance(node, ast.MatrixSelector):
            return self._matrix_selector(node, steps)
        if isinstance(node, ast.SubqueryExpr):
            return self._subquery(node, steps)
        if isinstance(node, ast.Call):
            return self._call(node, steps)
        if isinstance(node, ast.AggregateExpr):
            return self._aggregate(node, steps)
        if isinstance(node, ast.BinaryExpr):
            return self._binary(node, steps)
        raise QueryError(f"unsupported expression {node}")

    def _negate(self, value: Value) -> Value:
        if isinstance(value, ScalarSteps):
            return ScalarSteps(-value.values)
        if isinstance(value, VectorSteps):
            labels = [drop_metric_name(labels) for labels in value.labels]
            negated = VectorSteps(labels, -value.values, value.present)
            return merge_same_labels(negated, DUPLICATE_LABELSET)
        raise QueryError("unary expression only allowed on expressions of type scalar or vector")

    # --- selectors ---------------------------------------------------------------------------

    def _times(self, at: Any, offset: Any, steps: Ints) -> Ints:
        times = steps
        if at is not None:
            kind = str(at.type).rsplit(".", 1)[-1]
            if kind == "Start":
                fixed = self.start_ms
            elif kind == "End":
                fixed = self.end_ms
            else:
                fixed = round(at.at.timestamp() * 1000)
            times = np.full(len(steps), fixed, dtype=np.int64)
        if offset is not None:
            times = times - round(offset.total_seconds() * 1000)
        return times

    def _select(self, node: Any, start_ms: int, end_ms: int) -> list[SeriesData]:
        sets = or_matcher_sets(node) or [matchers_of(node)]
        if len(sets) == 1:
            # Sorted by labels, as Prometheus's storage returns them: results come out in a
            # stable order whatever order the store keeps its series in.
            found = sorted(self.source.select(sets[0], start_ms, end_ms), key=_labels_of)
        else:
            by_labels: dict[Labels, SeriesData] = {}
            for matchers in sets:
                for series in self.source.select(matchers, start_ms, end_ms):
                    by_labels.setdefault(series.labels, series)
            found = [by_labels[k] for k in sorted(by_labels)]
        self._account(sum(len(s.timestamps) for s in found))
        return found

    def _vector_selector(self, node: Any, steps: Ints) -> VectorSteps:
        times = self._times(node.at, node.offset, steps)
        lookback = self.options.lookback_ms
        low = int(times.min()) - lookback + 1
        high = int(times.max())
        found = self._select(node, low, high)
        n = len(steps)
        if not found:
            return VectorSteps.empty(n)
        self._account(len(found) * n)
        ts, vs, offsets = _flatten(found)
        span = high - low + 2
        series_index = np.repeat(np.arange(len(found), dtype=np.int64), np.diff(offsets))
        keys = series_index * span + (ts - low)
        queries = np.arange(len(found), dtype=np.int64)[:, None] * span + (times - low)[None, :]
        index = np.searchsorted(keys, queries, side="right") - 1
        present = index >= offsets[:-1][:, None]
        index = np.where(present, index, 0)
        sample_ts = ts[index]
        values = vs[index]
        present &= sample_ts > (times - lookback)[None, :]
        present &= ~stale_mask(values)
        labels = [s.labels for s in found]
        return VectorSteps(labels, values, present, sample_ts).compact()

    def _matrix_selector(self, node: Any, steps: Ints) -> RangeSteps:
        selector = node.vector_selector
        range_ms = round(node.range.total_seconds() * 1000)
        times = self._times(selector.at, selector.offset, steps)
        found = self._select(selector, int(times.min()) - range_ms + 1, int(times.max()))
        # Stale markers end instant selectors; range functions never see them.
        ts, vs, offsets = _flatten(found)
        stale = stale_mask(vs)
        if stale.any():
            keep = ~stale
            ts, vs = ts[keep], vs[keep]
            kept = np.concatenate(([0], np.cumsum(keep)))
            offsets = kept[offsets]
        return _windows_of_flat([s.labels for s in found], ts, vs, offsets, times, range_ms)

    def _subquery(self, node: Any, steps: Ints) -> RangeSteps:
        range_ms = round(node.range.total_seconds() * 1000)
        step_ms = round(node.step.total_seconds() * 1000) if node.step else DEFAULT_SUBQUERY_STEP_MS
        times = self._times(node.at, node.offset, steps)
        first = int(times.min()) - range_ms
        first = first - first % step_ms
        if first <= int(times.min()) - range_ms:
            first += step_ms
        last = int(times.max())
        inner_steps = np.arange(first, last + 1, step_ms, dtype=np.int64)
        if len(inner_steps) == 0:
            return _windows([], times, range_ms)
        inner = self.eval(node.expr, inner_steps)
        if isinstance(inner, ScalarSteps):
            inner = VectorSteps([()], inner.values[None, :], np.ones((1, len(inner_steps)), bool))
        if not isinstance(inner, VectorSteps):
            raise QueryError("subquery is only allowed on instant vector")
        series = [
            SeriesData(
                inner.labels[row],
                inner_steps[inner.present[row]],
                inner.values[row][inner.present[row]],
            )
            for row in range(len(inner))
        ]
        self._account(sum(len(s.timestamps) for s in series))
        return _windows(series, times, range_ms)

    # --- functions ---------------------------------------------------------------------------

    def _call(self, node: Any, steps: Ints) -> Value:
        name = node.func.name
        args = list(node.args)
        if name in _RANGE_FUNCTIONS or name in _RANGE_FUNCTIONS_WITH_ARGS:
            return self._range_function(name, args, steps)
        if name == "absent_over_time":
            windows = self._range_arg(args[0], steps)
            return _absent(args[0], np.asarray((windows.hi > windows.lo).any(axis=0)))
        if name == "absent":
            vector = self._vector_arg(args[0], steps)
            return _absent(args[0], np.asarray(vector.present.any(axis=0)))
        if name == "time":
            return ScalarSteps(steps / 1000.0)
        if name == "pi":
            return ScalarSteps(np.full(len(steps), math.pi))
        if name == "vector":
            scalar = self._scalar_arg(args[0], steps)
            return VectorSteps([()], scalar[None, :].copy(), np.ones((1, len(steps)), bool))
        if name == "scalar":
            vector = self._vector_arg(args[0], steps)
            counts = vector.present.sum(axis=0)
            values = np.full(len(steps), np.nan)
            if len(vector):
                only = counts == 1
                picked = np.where(vector.present, vector.values, 0.0).sum(axis=0)
                values[only] = picked[only]
            return ScalarSteps(values)
        if name in instant_functions.MATH:
            return instant_functions.apply_math(name, self._vector_arg(args[0], steps))
        if name in instant_functions.DATES:
            if args:
                vector = self._vector_arg(args[0], steps)
            else:
                vector = VectorSteps(
                    [()], (steps / 1000.0)[None, :], np.ones((1, len(steps)), bool)
                )
            return instant_functions.apply_date(name, vector)
        if name == "timestamp":
            vector = self._vector_arg(args[0], steps)
            stamps = (
                vector.sample_ts
                if vector.sample_ts is not None
                else np.broadcast_to(steps, vector.values.shape)
            )
            labels = [drop_metric_name(labels) for labels in vector.labels]
            result = VectorSteps(labels, stamps / 1000.0, vector.present)
            return merge_same_labels(result, DUPLICATE_LABELSET)
        if name == "round":
            to_nearest = self._scalar_arg(args[1], steps) if len(args) > 1 else np.ones(len(steps))
            return instant_functions.round_to(self._vector_arg(args[0], steps), to_nearest)
        if name in ("clamp", "clamp_min", "clamp_max"):
            vector = self._vector_arg(args[0], steps)
            if name == "clamp":
                low, high = self._scalar_arg(args[1], steps), self._scalar_arg(args[2], steps)
                return instant_functions.clamp(vector, low, high)
            bound = self._scalar_arg(args[1], steps)
            if name == "clamp_min":
                return instant_functions.clamp(vector, bound, None)
            return instant_functions.clamp(vector, None, bound)
        if name in ("sort", "sort_desc"):
            return _sorted_by_value(
                self._vector_arg(args[0], steps), descending=name == "sort_desc"
            )
        if name in ("sort_by_label", "sort_by_label_desc"):
            names = [self._string_arg(a, steps) for a in args[1:]]
            return _sorted_by_labels(
                self._vector_arg(args[0], steps), names, name.endswith("_desc")
            )
        if name == "label_replace":
            vector = self._vector_arg(args[0], steps)
            strings = [self._string_arg(a, steps) for a in args[1:5]]
            return instant_functions.label_replace(vector, *strings)
        if name == "label_join":
            vector = self._vector_arg(args[0], steps)
            destination = self._string_arg(args[1], steps)
            separator = self._string_arg(args[2], steps)
            sources = [self._string_arg(a, steps) for a in args[3:]]
            return instant_functions.label_join(vector, destination, separator, sources)
        if name == "histogram_quantile":
            q = self._scalar_arg(args[0], steps)
            vector = self._vector_arg(args[1], steps)
            return instant_functions.histogram_quantile(q, vector, self.annotate)
        raise QueryError(f"function {name!r} is not supported by opsbook's PromQL engine")

    def _range_arg(self, node: Any, steps: Ints) -> RangeSteps:
        value = self.eval(node, steps)
        if not isinstance(value, RangeSteps):
            raise QueryError("expected a range vector argument")
        return value

    def _vector_arg(self, node: Any, steps: Ints) -> VectorSteps:
        value = self.eval(node, steps)
        if not isinstance(value, VectorSteps):
            raise QueryError("expected an instant vector argument")
        return value

    def _scalar_arg(self, node: Any, steps: Ints) -> Floats:
        value = self.eval(node, steps)
        if not isinstance(value, ScalarSteps):
            raise QueryError("expected a scalar argument")
        return value.values

    def _string_arg(self, node: Any, steps: Ints) -> str:
        value = self.eval(node, steps)
        if not isinstance(value, StringValue):
            raise QueryError("expected a string argument")
        return value.value

    def _range_function(self, name: str, args: list[Any], steps: Ints) -> VectorSteps:
        if name in _RANGE_FUNCTIONS_WITH_ARGS:
            range_node = args[1] if name == "quantile_over_time" else args[0]
        else:
            range_node = args[0]
        summarized = self._summarized(name, range_node, steps)
        if summarized is not None:
            return summarized
        windows = self._range_arg(range_node, steps)
        if name == "quantile_over_time":
            q = self._scalar_arg(args[0], steps)
            values, present = range_functions.quantile_over_time(windows, q, self.annotate)
        elif name == "predict_linear":
            duration = self._scalar_arg(args[1], steps)
            values, present = range_functions.predict_linear(windows, duration, steps)
        elif name in ("double_exponential_smoothing", "holt_winters"):
            smoothing = self._scalar_arg(args[1], steps)
            trend = self._scalar_arg(args[2], steps)
            values, present = range_functions.double_exponential_smoothing(
                windows, smoothing, trend
            )
        else:
            values, present = _RANGE_FUNCTIONS[name](windows)
        if name in ("rate", "increase"):
            self._counter_info(windows.labels, present)
        return self._range_result(name, windows.labels, values, present)

    def _range_result(
        self, name: str, labels: list[Labels], values: Floats, present: np.ndarray
    ) -> VectorSteps:
        if name not in ("last_over_time", "first_over_time"):
            labels = [drop_metric_name(series) for series in labels]
        result = VectorSteps(labels, values, present).compact()
        return merge_same_labels(result, DUPLICATE_LABELSET)

    def _counter_info(self, labels: list[Labels], present: np.ndarray) -> None:
        for row, series in enumerate(labels):
            name = metric_name(series)
            if name and present[row].any() and not name.endswith(COUNTER_SUFFIXES):
                self.annotate(
                    "info",
                    "PromQL info: metric might not be a counter, name does not end in one of: "
                    f'"_total", "_sum", "_count", "_bucket": "{name}"',
                )

    def _summarized(self, name: str, node: Any, steps: Ints) -> VectorSteps | None:
        """Long windows at a few steps come from the store's rollups, not from raw samples."""
        if (
            name not in _SUMMARY_FUNCTIONS
            or not isinstance(node, ast.MatrixSelector)
            or len(steps) > SUMMARY_MAX_STEPS
            or not isinstance(self.source, SummarySource)
        ):
            return None
        range_ms = round(node.range.total_seconds() * 1000)
        if range_ms < SUMMARY_MIN_RANGE_MS:
            return None
        selector = node.vector_selector
        if selector.matchers.or_matchers:
            return None
        times = self._times(selector.at, selector.offset, steps)
        matchers = matchers_of(selector)
        rows: dict[Labels, int] = {}
        cells: list[tuple[int, int, float]] = []
        for j, end in enumerate(times.tolist()):
            for summary in self.source.summarize(matchers, end - range_ms, end):
                value = _from_summary(name, summary, end, range_ms)
                if value is None:
                    continue
                row = rows.setdefault(summary.labels, len(rows))
                cells.append((row, j, value))
        self._account(len(cells))
        values = np.full((len(rows), len(steps)), np.nan)
        present = np.zeros((len(rows), len(steps)), dtype=bool)
        for row, j, value in cells:
            values[row, j] = value
            present[row, j] = True
        if name in ("rate", "increase"):
            self._counter_info(list(rows), present)
        return self._range_result(name, list(rows), values, present)

    # --- aggregation and binary operators ----------------------------------------------------

    def _aggregate(self, node: Any, steps: Ints) -> VectorSteps:
        op = str(node.op)
        vector = self._vector_arg(node.expr, steps)
        param: Floats | str | None = None
        if node.param is not None:
            value = self.eval(node.param, steps)
            if isinstance(value, StringValue):
                param = value.value
            elif isinstance(value, ScalarSteps):
                param = value.values
            else:
                raise QueryError(f"expected a scalar or string parameter for {op}")
        modifier = node.modifier
        without = modifier is not None and str(modifier.type).endswith("Without")
        names = list(modifier.labels) if modifier is not None else []
        keys = aggregation.group_keys(vector.labels, names, without)
        return aggregation.aggregate(op, vector, keys, param, self.annotate)

    def _binary(self, node: Any, steps: Ints) -> Value:
        op = str(node.op)
        lhs = self.eval(node.lhs, steps)
        rhs = self.eval(node.rhs, steps)
        matching = binary.matching_from(node.modifier, op)
        if isinstance(lhs, ScalarSteps) and isinstance(rhs, ScalarSteps):
            return binary.scalar_scalar(op, lhs, rhs)
        if isinstance(lhs, VectorSteps) and isinstance(rhs, ScalarSteps):
            return binary.vector_scalar(
                op, lhs, rhs, vector_on_left=True, return_bool=matching.return_bool
            )
        if isinstance(lhs, ScalarSteps) and isinstance(rhs, VectorSteps):
            return binary.vector_scalar(
                op, rhs, lhs, vector_on_left=False, return_bool=matching.return_bool
            )
        if isinstance(lhs, VectorSteps) and isinstance(rhs, VectorSteps):
            return binary.vector_vector(op, lhs, rhs, matching)
        raise QueryError(f"binary operator {op!r} is not defined on these operand types")


_DIGITS = re.compile(r"(\d+)")


def _labels_of(series: SeriesData) -> Labels:
    return series.labels


def _flatten(series: Sequence[SeriesData]) -> tuple[Ints, Floats, Ints]:
    counts = np.array([len(s.timestamps) for s in series], dtype=np.int64)
    offsets = np.zeros(len(series) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    if len(series):
        ts = np.concatenate([s.timestamps for s in series]).astype(np.int64, copy=False)
        vs = np.concatenate([s.values for s in series]).astype(np.float64, copy=False)
    else:
        ts, vs = np.zeros(0, np.int64), np.zeros(0)
    return ts, vs, offsets


def _windows(series: Sequence[SeriesData], times: Ints, range_ms: int) -> RangeSteps:
    ts, vs, offsets = _flatten(series)
    return _windows_of_flat([s.labels for s in series], ts, vs, offsets, times, range_ms)


def _windows_of_flat(
    labels: list[Labels], ts: Ints, vs: Floats, offsets: Ints, times: Ints, range_ms: int
) -> RangeSteps:
    base = int(times.min()) - range_ms if len(times) else 0
    if len(ts):
        base = min(base, int(ts.min()) - 1)
    top = max(int(times.max()), int(ts.max()) if len(ts) else 0)
    span = top - base + 2
    series_index = np.repeat(np.arange(len(labels), dtype=np.int64), np.diff(offsets))
    keys = series_index * span + (ts - base)
    rows = np.arange(len(labels), dtype=np.int64)[:, None] * span
    lo = np.searchsorted(keys, rows + (times - range_ms - base)[None, :], side="right")
    hi = np.searchsorted(keys, rows + (times - base)[None, :], side="right")
    return RangeSteps(
        labels, ts, vs, offsets, lo.astype(np.int64), hi.astype(np.int64), times, range_ms
    )


def _absent(node: Any, present_any: np.ndarray) -> VectorSteps:
    absent = ~present_any
    labels: Labels = ()
    selector = node
    while isinstance(selector, ast.ParenExpr):
        selector = selector.expr
    if isinstance(selector, ast.MatrixSelector):
        selector = selector.vector_selector
    if isinstance(selector, ast.VectorSelector) and not selector.matchers.or_matchers:
        seen: dict[str, list[Matcher]] = {}
        for matcher in matchers_of(selector):
            seen.setdefault(matcher.name, []).append(matcher)
        pairs = []
        for name, group in seen.items():
            if name == METRIC_NAME:
                continue
            # A label constrained more than once has no single value to report.
            if len(group) == 1 and group[0].type is MatchType.EQUAL and group[0].value:
                pairs.append((name, group[0].value))
        labels = tuple(sorted(pairs))
    values = np.ones((1, len(absent)))
    return VectorSteps([labels], values, absent[None, :].copy()).compact()


def _sorted_by_value(vector: VectorSteps, *, descending: bool) -> VectorSteps:
    if vector.steps() != 1 or len(vector) == 0:
        return vector
    column = vector.values[:, 0]

    def key(row: int) -> tuple[int, float]:
        value = float(column[row])
        if math.isnan(value):
            return (1, 0.0)  # NaN last either way
        return (0, -value if descending else value)

    order = sorted(range(len(vector)), key=key)
    return VectorSteps(
        [vector.labels[i] for i in order], vector.values[order], vector.present[order]
    )


def _sorted_by_labels(vector: VectorSteps, names: list[str], descending: bool) -> VectorSteps:
    def key(row: int) -> tuple[Any, ...]:
        values = dict(vector.labels[row])
        return (tuple(_natural(values.get(n, "")) for n in names), vector.labels[row])

    order = sorted(range(len(vector)), key=key, reverse=descending)
    return VectorSteps(
        [vector.labels[i] for i in order], vector.values[order], vector.present[order]
    )


def _natural(text: str) -> tuple[Any, ...]:
    parts = _DIGITS.split(text)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p)


def _from_summary(name: str, summary: RangeSummary, end: int, range_ms: int) -> float | None:
    count = summary.count
    if name == "count_over_time":
        return float(count)
    if name == "sum_over_time":
        return float(summary.sum)
    if name == "avg_over_time":
        return float(summary.sum) / float(count)
    if name == "min_over_time":
        return float(summary.min)
    if name == "max_over_time":
        return float(summary.max)
    if name == "last_over_time":
        return float(summary.last_v)
    if name == "changes":
        return float(summary.changes)
    if name == "resets":
        return float(summary.resets)
    if count < 2:
        return None
    is_counter = name in ("rate", "increase")
    result = summary.increase if is_counter else summary.last_v - summary.first_v
    to_start = (summary.first_t - (end - range_ms)) / 1000.0
    to_end = (end - summary.last_t) / 1000.0
    sampled = (summary.last_t - summary.first_t) / 1000.0
    if sampled == 0:
        return None
    average_gap = sampled / (count - 1)
    threshold = average_gap * 1.1
    if to_start >= threshold:
        to_start = average_gap / 2
    if is_counter and result > 0 and summary.first_v >= 0:
        to_start = min(to_start, sampled * (summary.first_v / result))
    if to_end >= threshold:
        to_end = average_gap / 2
    factor: float = (sampled + to_start + to_end) / sampled
    if name == "rate":
        factor /= range_ms / 1000.0
    return float(result) * factor


_RangeFn = Callable[[RangeSteps], tuple[Floats, np.ndarray]]

_RANGE_FUNCTIONS: dict[str, _RangeFn] = {
    "rate": lambda r: range_functions.extrapolated_rate(r, is_counter=True, is_rate=True),
    "increase": lambda r: range_functions.extrapolated_rate(r, is_counter=True, is_rate=False),
    "delta": lambda r: range_functions.extrapolated_rate(r, is_counter=False, is_rate=False),
    "irate": lambda r: range_functions.instant_rate(r, is_rate=True),
    "idelta": lambda r: range_functions.instant_rate(r, is_rate=False),
    "count_over_time": range_functions.count_over_time,
    "present_over_time": range_functions.present_over_time,
    "last_over_time": range_functions.last_over_time,
    "first_over_time": range_functions.first_over_time,
    "ts_of_last_over_time": range_functions.ts_of_last_over_time,
    "ts_of_max_over_time": range_functions.ts_of_max_over_time,
    "ts_of_min_over_time": range_functions.ts_of_min_over_time,
    "sum_over_time": range_functions.sum_over_time,
    "avg_over_time": range_functions.avg_over_time,
    "min_over_time": range_functions.min_over_time,
    "max_over_time": range_functions.max_over_time,
    "stddev_over_time": range_functions.stddev_over_time,
    "stdvar_over_time": range_functions.stdvar_over_time,
    "mad_over_time": range_functions.mad_over_time,
    "changes": range_functions.changes,
    "resets": range_functions.resets,
    "deriv": range_functions.deriv,
}
_RANGE_FUNCTIONS_WITH_ARGS = {
    "quantile_over_time",
    "predict_linear",
    "double_exponential_smoothing",
    "holt_winters",
}
_SUMMARY_FUNCTIONS = {
    "rate",
    "increase",
    "delta",
    "count_over_time",
    "sum_over_time",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "changes",
    "resets",
}
