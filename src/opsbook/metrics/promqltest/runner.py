"""Runs PromQL test scripts against a PromQL engine and judges every eval like Prometheus does.

Each ``eval`` command is one case and ends passed, failed (with a short reason) or skipped (with
the reason it is declared unsupported). Data is loaded into a fresh
:class:`~opsbook.metrics.memory.MemoryStore` per file and after every ``clear``; test-language
times count from the Unix epoch, so ``load 5m`` puts its first point at t=0.

Results are compared as Prometheus's ``promqltest`` package compares them:

- floats are equal when their relative difference is below 1e-6 (:func:`almost_equal`), and
  NaN equals NaN;
- the labels of every series must match exactly, ``__name__`` included; no series may be missing
  or extra; with ``expect ordered`` an instant vector must also be in the given order;
- a range result is compared per series and point; ``_`` in the expected points is a step
  without a point; its series must be sorted by labels;
- an instant eval that passed is also run as a range query from one minute before to one minute
  after its time with a one-minute step, and the middle step must give the same result
  (not for ordered results, nor for expressions using ``start()``, ``end()``, ``range()`` or
  ``step()``);
- ``expect fail`` needs a :class:`~opsbook.metrics.query.QueryError` whose message matches;
  ``expect warn``/``info`` need annotations, each matching one of the expect lines;
  ``expect no_warn``/``no_info`` need none.

Skipped, by a declared list only — opsbook stores float samples, not native histograms: cases
whose expected output has native histograms (``{{…}}``), that call a native-histogram-only
function (:data:`NATIVE_HISTOGRAM_FUNCTIONS`), or whose selectors match a series that was loaded
with native-histogram samples (``{{…}}`` points, or the series ``load_with_nhcb`` derives from
classic histograms). A case never becomes skipped because it failed.
"""

from __future__ import annotations

import enum
import itertools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import promql_parser

from opsbook.metrics.memory import MemoryStore
from opsbook.metrics.model import (
    METRIC_NAME,
    Labels,
    Matcher,
    format_labels,
    is_stale,
    matches_all,
    metric_name,
    with_label,
    without_labels,
)
from opsbook.metrics.promql.parser import matcher_group
from opsbook.metrics.promqltest.script import (
    Clear,
    Eval,
    EvalInstant,
    EvalRange,
    ExpectKind,
    HistogramPoint,
    Load,
    Script,
    ScriptError,
    SeriesSpec,
    parse_script,
)
from opsbook.metrics.query import (
    Matrix,
    MatrixSeries,
    QueryError,
    QueryResult,
    QuerySyntaxError,
    QueryValue,
    Sample,
    Scalar,
    String,
    Vector,
)

DEFAULT_LOOKBACK_MS = 300_000
"""Prometheus's default lookback delta, which its test engine uses."""

DEFAULT_EPSILON = 1e-6
"""Relative error allowed between an expected and an actual sample value (Prometheus's)."""

NATIVE_HISTOGRAM_FUNCTIONS = frozenset(
    {
        "histogram_count",
        "histogram_sum",
        "histogram_avg",
        "histogram_fraction",
        "histogram_stddev",
        "histogram_stdvar",
    }
)
"""Functions that only work on native histograms; cases calling them are skipped."""

RANGE_MODE_STEP_MS = 60_000
_QUERY_CONTEXT_FUNCTIONS_RE = re.compile(r"\b(?:start|end|range|step)\(\)")
_MIN_NORMAL = 2.2250738585072014e-308  # the smallest positive normal float64
_MAX_FLOAT = 1.7976931348623157e308


class QueryEngine(Protocol):
    """What the runner needs of a PromQL engine (opsbook's ``promql.Engine`` has it)."""

    def instant_query(self, expr: str, time_ms: int) -> QueryResult: ...

    def range_query(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> QueryResult: ...


EngineFactory = Callable[[MemoryStore], QueryEngine]


def opsbook_engine(store: MemoryStore) -> QueryEngine:
    """opsbook's PromQL engine over ``store``, with Prometheus's test-engine lookback of 5m."""
    # Imported here so that parsing scripts and testing the runner do not need the engine.
    from opsbook.metrics.promql import Engine, EngineOptions

    return Engine(store, EngineOptions(lookback_ms=DEFAULT_LOOKBACK_MS))


class CaseStatus(enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The outcome of one ``eval`` command."""

    source: str
    line: int
    expr: str
    kind: str  # "instant" or "range"
    status: CaseStatus
    reason: str = ""
    native_histograms: bool = False  # skipped because it needs native histograms


@dataclass(slots=True)
class FileResult:
    source: str
    cases: list[CaseResult] = field(default_factory=list)

    def count(self, status: CaseStatus) -> int:
        return sum(1 for case in self.cases if case.status is status)

    @property
    def passed(self) -> int:
        return self.count(CaseStatus.PASSED)

    @property
    def failed(self) -> int:
        return self.count(CaseStatus.FAILED)

    @property
    def skipped(self) -> int:
        return self.count(CaseStatus.SKIPPED)

    @property
    def native_histogram_cases(self) -> int:
        return sum(1 for case in self.cases if case.native_histograms)


def read_script(path: Path, source: str | None = None) -> Script:
    """Read and parse one test file; :class:`ScriptError` when unreadable or invalid.

    ``source`` names the file in results and syntax errors (default: the path); a file that
    cannot be read is reported with its full path.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ScriptError(str(path), None, f"cannot read the test file: {reason}") from None
    return parse_script(text, source or str(path))


def run_script(
    script: Script,
    engine_factory: EngineFactory = opsbook_engine,
    on_case: Callable[[CaseResult], None] | None = None,
) -> FileResult:
    """Run every command of ``script``; ``on_case`` is called after each eval (progress)."""
    result = FileResult(script.source)
    session = _Session(engine_factory)
    try:
        for command in script.commands:
            if isinstance(command, Clear):
                session.reset()
            elif isinstance(command, Load):
                session.load(command)
            else:
                case = session.evaluate(script.source, command)
                result.cases.append(case)
                if on_case is not None:
                    on_case(case)
    finally:
        session.store.close()
    return result


class _Session:
    """The state between ``clear`` commands: the store, its engine, the histogram series."""

    def __init__(self, engine_factory: EngineFactory) -> None:
        self.engine_factory = engine_factory
        self.store = MemoryStore()
        self.engine: QueryEngine | None = None
        self.histogram_series: set[Labels] = set()

    def reset(self) -> None:
        self.store.close()
        self.store = MemoryStore()
        self.engine = None
        self.histogram_series = set()

    def load(self, load: Load) -> None:
        series: list[Labels] = []
        timestamps: list[int] = []
        values: list[float] = []
        for spec in load.series:
            if spec.has_histograms:
                self.histogram_series.add(spec.labels)
            for index, point in enumerate(spec.points):
                if isinstance(point, float):
                    series.append(spec.labels)
                    timestamps.append(index * load.interval_ms)
                    values.append(point)
        if load.with_nhcb:
            self.histogram_series.update(_custom_bucket_histograms(load.series))
        self.store.append(series, timestamps, values)

    def evaluate(self, source: str, command: Eval) -> CaseResult:
        kind = "instant" if isinstance(command, EvalInstant) else "range"
        skip_reason = unsupported_reason(command, self.histogram_series)
        if skip_reason is not None:
            return CaseResult(
                source,
                command.line,
                command.expr,
                kind,
                CaseStatus.SKIPPED,
                skip_reason,
                native_histograms=True,
            )
        if self.engine is None:
            self.engine = self.engine_factory(self.store)
        try:
            problem = check_eval(self.engine, command)
        except Exception as exc:  # an engine bug must not stop the other cases
            problem = f"the engine crashed: {type(exc).__name__}: {exc}"
        status = CaseStatus.PASSED if problem is None else CaseStatus.FAILED
        return CaseResult(source, command.line, command.expr, kind, status, problem or "")


def _custom_bucket_histograms(series: Iterable[SeriesSpec]) -> set[Labels]:
    """The series ``load_with_nhcb`` adds: one native histogram per classic histogram.

    ``x_bucket{le=…}``, ``x_count`` and ``x_sum`` become ``x`` without ``le``, as in Prometheus.
    """
    derived: set[Labels] = set()
    for spec in series:
        name = metric_name(spec.labels) or ""
        if not any(isinstance(point, float) for point in spec.points):
            continue
        base = None
        if name.endswith("_bucket"):
            le = dict(spec.labels).get("le")
            if le is not None and _parses_as_number(le):
                base = name.removesuffix("_bucket")
        elif name.endswith("_count"):
            base = name.removesuffix("_count")
        elif name.endswith("_sum"):
            base = name.removesuffix("_sum")
        if base:
            derived.add(with_label(without_labels(spec.labels, ["le"]), METRIC_NAME, base))
    return derived


def _parses_as_number(text: str) -> bool:
    try:
        return not math.isnan(float(text))
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------------
# What is declared unsupported


def unsupported_reason(command: Eval, histogram_series: set[Labels]) -> str | None:
    """Why ``command`` needs native histograms, or None when opsbook can run it."""
    if any(
        isinstance(point, HistogramPoint)
        for spec in command.expected_series
        for point in spec.points
    ):
        return "needs native histograms: the expected result has native histogram samples"
    try:
        expr = promql_parser.parse(command.expr)
    except ValueError:  # the engine reports syntax errors itself; judge by the names used
        return _unsupported_by_names(command.expr, histogram_series)
    functions: list[str] = []
    selectors: list[list[Matcher]] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.Call):
            functions.append(node.func.name)
        elif isinstance(node, promql_parser.VectorSelector):
            selectors.extend(_matcher_sets(node))

    promql_parser.walk(expr, visit)
    for function in functions:
        if function in NATIVE_HISTOGRAM_FUNCTIONS:
            return f"needs native histograms: calls {function}(), which only works on them"
    for matchers in selectors:
        for labels in sorted(histogram_series):
            if matches_all(labels, matchers):
                return (
                    "needs native histograms: selects "
                    f"{format_labels(labels)}, which was loaded with native histogram samples"
                )
    return None


def _matcher_sets(selector: promql_parser.VectorSelector) -> list[list[Matcher]]:
    """The selector as alternatives of matcher lists (``{a="1" or b="2"}`` has two)."""
    groups = selector.matchers.or_matchers or [selector.matchers.matchers]
    sets = []
    for group in groups:
        try:
            sets.append(matcher_group(selector, group))
        except QuerySyntaxError:
            continue  # an invalid regex selects nothing (the engine reports it)
    return sets


_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _unsupported_by_names(expr: str, histogram_series: set[Labels]) -> str | None:
    # Rough but safe for an expression promql_parser cannot read: the names it mentions.
    names = set(_NAME_RE.findall(expr))
    functions = sorted(names & NATIVE_HISTOGRAM_FUNCTIONS)
    if functions:
        return f"needs native histograms: calls {functions[0]}(), which only works on them"
    histogram_names = {metric_name(labels) or "" for labels in histogram_series}
    mentioned = sorted(names & histogram_names)
    if mentioned:
        return (
            f"needs native histograms: mentions {mentioned[0]}, which has native histogram samples"
        )
    return None


# ---------------------------------------------------------------------------------------------
# Judging one eval


def almost_equal(a: float, b: float, epsilon: float = DEFAULT_EPSILON) -> bool:
    """Prometheus's test comparison: relative difference below ``epsilon``; NaN equals NaN."""
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0 or b == 0 or abs_sum < _MIN_NORMAL:
        # Near zero a relative error means nothing; allow a tiny absolute one.
        return diff < epsilon * _MIN_NORMAL
    return diff / min(abs_sum, _MAX_FLOAT) < epsilon


def check_eval(engine: QueryEngine, command: Eval) -> str | None:
    """None when the engine's answer to ``command`` is as expected, else the reason it is not."""
    try:
        if isinstance(command, EvalInstant):
            result = engine.instant_query(command.expr, command.time_ms)
        else:
            result = engine.range_query(
                command.expr, command.start_ms, command.end_ms, command.step_ms
            )
    except QueryError as exc:
        if command.expects_failure:
            return _check_failure(command, exc.message)
        return f"query failed: {exc.message}"
    if command.expects_failure:
        return f"expected the query to fail, but it returned {_describe_value(result.value)}"
    problem = _check_annotations(command, result) or _compare(command, result.value)
    if problem is not None or not isinstance(command, EvalInstant):
        return problem
    return _check_range_mode(engine, command, result.value)


def _check_failure(command: Eval, message: str) -> str | None:
    for expectation in command.expecting(ExpectKind.FAIL):
        if not expectation.matches(message):
            return f"expected an error with {expectation.describe()}, got: {message}"
    return None


def _check_annotations(command: Eval, result: QueryResult) -> str | None:
    for noun, actual, expect, forbid in (
        ("warn", result.warnings, ExpectKind.WARN, ExpectKind.NO_WARN),
        ("info", result.infos, ExpectKind.INFO, ExpectKind.NO_INFO),
    ):
        expected = command.expecting(expect)
        if expected:
            if not actual:
                return f"expected {noun} annotations, got none"
            for expectation in expected:
                if not any(expectation.matches(text) for text in actual):
                    return (
                        f"expected a {noun} annotation with {expectation.describe()}, "
                        f"got: {_quote_all(actual)}"
                    )
            for text in actual:
                if not any(expectation.matches(text) for expectation in expected):
                    return f"unexpected {noun} annotation: {text!r}"
        if command.expecting(forbid) and actual:
            return f"expected no {noun} annotations, got: {_quote_all(actual)}"
    return None


def _compare(command: Eval, value: QueryValue) -> str | None:
    if isinstance(command, EvalRange):
        if not isinstance(value, Matrix):
            return f"a range query must return a range vector, got {_describe_value(value)}"
        return _compare_matrix(command, value)
    if isinstance(value, Scalar):
        if command.expected_scalar is None:
            return (
                f"expected {_describe_expected(command)}, got scalar {_format_value(value.value)}"
            )
        if not almost_equal(command.expected_scalar, value.value):
            return (
                f"expected scalar {_format_value(command.expected_scalar)}, "
                f"got {_format_value(value.value)}"
            )
        return None
    if isinstance(value, Vector):
        if command.expected_scalar is not None:
            return f"expected {_describe_expected(command)}, got {_describe_value(value)}"
        return _compare_vector(command.expected_series, value.samples, ordered=command.ordered)
    if isinstance(value, Matrix):
        # Prometheus's test language cannot state range-vector results of instant queries.
        if command.expected_scalar is not None or command.expected_series:
            return f"expected {_describe_expected(command)}, got {_describe_value(value)}"
        if value.series:
            first = value.series[0]
            return f"unexpected series {format_labels(first.labels)} in result: {_points(first)}"
        return None
    if command.expected_scalar is not None or command.expected_series or value.value != "":
        return f"expected {_describe_expected(command)}, got {_describe_value(value)}"
    return None


def _compare_vector(
    expected_series: Sequence[SeriesSpec], samples: Sequence[Sample], *, ordered: bool
) -> str | None:
    expected = {spec.labels: (position, spec) for position, spec in enumerate(expected_series)}
    seen: set[Labels] = set()
    for position, sample in enumerate(samples):
        entry = expected.get(sample.labels)
        if entry is None:
            return (
                f"unexpected series {format_labels(sample.labels)} in result "
                f"(value {_format_value(sample.value)})"
            )
        expected_position, spec = entry
        if ordered and expected_position != position:
            return (
                f"expected {format_labels(sample.labels)} at position {expected_position + 1}, "
                f"but it was at {position + 1}"
            )
        # `_` as an instant value compares with 0, as in Prometheus's reader (expected
        # histograms never get here: those cases are skipped).
        point = spec.points[0]
        want = point if isinstance(point, float) else 0.0
        if not almost_equal(want, sample.value):
            return (
                f"expected {_format_value(want)} for {format_labels(sample.labels)}, "
                f"got {_format_value(sample.value)}"
            )
        seen.add(sample.labels)
    missing = [spec for labels, (_, spec) in expected.items() if labels not in seen]
    if missing:
        listed = ", ".join(
            f"{format_labels(spec.labels)} {_format_point(spec.points[0])}" for spec in missing[:3]
        )
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        return f"expected series not in result: {listed}{more}"
    return None


def _compare_matrix(command: EvalRange, matrix: Matrix) -> str | None:
    unsorted = _unsorted_at(matrix.series)
    if unsorted is not None:
        return unsorted
    if command.ordered:
        return "expect ordered does not apply to a range query: its result is sorted by labels"
    if command.expected_scalar is not None:
        return f"expected {_describe_expected(command)}, got {_describe_value(matrix)}"
    expected = {spec.labels: spec for spec in command.expected_series}
    seen: set[Labels] = set()
    for series in matrix.series:
        spec = expected.get(series.labels)
        if spec is None:
            return f"unexpected series {format_labels(series.labels)} in result: {_points(series)}"
        seen.add(series.labels)
        problem = _compare_series_points(command, spec, series)
        if problem is not None:
            return problem
    missing = [spec for labels, spec in expected.items() if labels not in seen]
    if missing:
        names = ", ".join(format_labels(spec.labels) for spec in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        return f"expected series not in result: {names}{more}"
    return None


def _compare_series_points(
    command: EvalRange, spec: SeriesSpec, series: MatrixSeries
) -> str | None:
    labels = format_labels(spec.labels)
    wanted: list[tuple[int, float]] = []
    for index, point in enumerate(spec.points):
        t = command.start_ms + index * command.step_ms
        if t > command.end_ms:
            return (
                f"{len(spec.points)} points are expected for {labels}, more than the steps "
                f"from {_format_time(command.start_ms)} to {_format_time(command.end_ms)}"
            )
        if isinstance(point, float):
            wanted.append((t, point))
    got = list(zip(series.timestamps.tolist(), series.values.tolist(), strict=True))
    if len(got) != len(wanted):
        return f"expected {len(wanted)} points for {labels}, got {len(got)}: {_points(series)}"
    for (want_t, want_v), (got_t, got_v) in zip(wanted, got, strict=True):
        if want_t != got_t:
            return (
                f"expected a point at {_format_time(want_t)} for {labels}, "
                f"got one at {_format_time(got_t)}: {_points(series)}"
            )
        if not almost_equal(want_v, got_v):
            return (
                f"expected {_format_value(want_v)} at {_format_time(want_t)} for {labels}, "
                f"got {_format_value(got_v)}"
            )
    return None


def _unsorted_at(series: Sequence[MatrixSeries]) -> str | None:
    for before, after in itertools.pairwise(series):
        if before.labels > after.labels:
            return (
                "range vector series must be sorted by labels, but "
                f"{format_labels(before.labels)} comes before {format_labels(after.labels)}"
            )
    return None


def _check_range_mode(engine: QueryEngine, command: EvalInstant, value: QueryValue) -> str | None:
    """Prometheus also runs each instant eval as a range query; the middle step must agree."""
    if command.ordered or _QUERY_CONTEXT_FUNCTIONS_RE.search(command.expr):
        return None
    t = command.time_ms
    start, end = t - RANGE_MODE_STEP_MS, t + RANGE_MODE_STEP_MS
    prefix = f"as a range query from {_format_time(start)} to {_format_time(end)} step 1m"
    try:
        result = engine.range_query(command.expr, start, end, RANGE_MODE_STEP_MS)
    except QueryError as exc:
        return f"{prefix}: query failed: {exc.message}"
    if not isinstance(result.value, Matrix):
        return f"{prefix}: expected a range vector, got {_describe_value(result.value)}"
    unsorted = _unsorted_at(result.value.series)
    if unsorted is not None:
        return f"{prefix}: {unsorted}"
    at_t: list[Sample] = []
    for series in result.value.series:
        hits = np.flatnonzero(series.timestamps == t)
        if hits.size:
            at_t.append(Sample(series.labels, t, float(series.values[hits[0]])))
    if isinstance(value, Scalar):
        if not at_t:
            return f"{prefix}: no point at {_format_time(t)}"
        problem = _compare(command, Scalar(t, at_t[0].value))
    else:
        problem = _compare(command, Vector(at_t))
    return None if problem is None else f"{prefix}: {problem}"


# ---------------------------------------------------------------------------------------------
# Short texts for reasons


def _format_value(value: float) -> str:
    if is_stale(value):
        return "stale"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _format_point(point: float | HistogramPoint | None) -> str:
    if point is None:
        return "_"
    if isinstance(point, HistogramPoint):
        return f"{{{{{point.text}}}}}"
    return _format_value(point)


def _format_time(t_ms: int) -> str:
    if t_ms == 0:
        return "0s"
    sign, rest = ("-" if t_ms < 0 else ""), abs(t_ms)
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)):
        amount, rest = divmod(rest, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return sign + "".join(parts)


def _points(series: MatrixSeries, limit: int = 8) -> str:
    pairs = list(zip(series.timestamps.tolist(), series.values.tolist(), strict=True))
    shown = " ".join(f"{_format_value(v)}@{_format_time(t)}" for t, v in pairs[:limit])
    more = f" …{len(pairs) - limit} more" if len(pairs) > limit else ""
    return f"[{shown}{more}]"


def _quote_all(texts: Sequence[str]) -> str:
    return "; ".join(repr(text) for text in texts)


def _describe_expected(command: Eval) -> str:
    if command.expected_scalar is not None:
        return f"scalar {_format_value(command.expected_scalar)}"
    count = len(command.expected_series)
    if count == 0:
        return "an empty result"
    return f"{count} series" if count != 1 else "1 series"


def _describe_value(value: QueryValue) -> str:
    if isinstance(value, Scalar):
        return f"scalar {_format_value(value.value)}"
    if isinstance(value, String):
        return f"string {value.value!r}"
    if isinstance(value, Vector):
        count = len(value.samples)
        return f"an instant vector of {count} sample{'s' if count != 1 else ''}"
    count = len(value.series)
    return f"a range vector of {count} series"
