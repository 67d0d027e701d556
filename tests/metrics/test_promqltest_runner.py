"""The PromQL test runner's judgement, and ``opsbook promql test``, against an engine test double.

The double evaluates number literals and plain selectors over the runner's MemoryStore (so the
loaded data is really read back), and answers other expressions from a script of canned results.
The real engine is exercised by ``test_promql_conformance.py``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import promql_parser
import pytest
from typer.testing import CliRunner

from opsbook.cli import promql as promql_cli
from opsbook.cli.main import app
from opsbook.metrics.memory import MemoryStore
from opsbook.metrics.model import STALE_NAN, Labels, Matcher, is_stale
from opsbook.metrics.promqltest.runner import (
    CaseResult,
    CaseStatus,
    EngineFactory,
    FileResult,
    almost_equal,
    run_script,
)
from opsbook.metrics.promqltest.script import parse_script
from opsbook.metrics.query import (
    Matrix,
    MatrixSeries,
    QueryError,
    QueryResult,
    Sample,
    Scalar,
    Vector,
)

LOOKBACK_MS = 300_000
Answer = QueryResult | Exception


class DoubleEngine:
    """Number literals and plain selectors from the store; canned answers for the rest.

    A range query of a canned expression repeats its instant answer at every step, unless
    ``range_answers`` has one of its own.
    """

    def __init__(
        self,
        store: MemoryStore,
        answers: Mapping[str, Answer],
        range_answers: Mapping[str, Answer],
    ) -> None:
        self.store = store
        self.answers = answers
        self.range_answers = range_answers

    def instant_query(self, expr: str, time_ms: int) -> QueryResult:
        if expr in self.answers:
            return _give(self.answers[expr])
        node = promql_parser.parse(expr)
        if isinstance(node, promql_parser.NumberLiteral):
            return QueryResult(Scalar(time_ms, node.val))
        if isinstance(node, promql_parser.VectorSelector):
            return QueryResult(Vector(self._select(node, time_ms)))
        raise QueryError(f"the test double cannot evaluate {expr}")

    def range_query(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> QueryResult:
        if expr in self.range_answers:
            return _give(self.range_answers[expr])
        points: dict[Labels, list[tuple[int, float]]] = {}
        for t in range(start_ms, end_ms + 1, step_ms):
            value = self.instant_query(expr, t).value
            samples = [Sample((), t, value.value)] if isinstance(value, Scalar) else []
            if isinstance(value, Vector):
                samples = value.samples
            for sample in samples:
                points.setdefault(sample.labels, []).append((t, sample.value))
        series = [
            MatrixSeries(
                labels,
                np.array([t for t, _ in pairs], dtype=np.int64),
                np.array([v for _, v in pairs], dtype=np.float64),
            )
            for labels, pairs in sorted(points.items())
        ]
        return QueryResult(Matrix(series))

    def _select(self, node: promql_parser.VectorSelector, time_ms: int) -> list[Sample]:
        matchers = [Matcher.equal(m.name, m.value) for m in node.matchers.matchers]
        if node.name:
            matchers.append(Matcher.equal("__name__", node.name))
        samples = []
        for data in self.store.select(matchers, time_ms - LOOKBACK_MS + 1, time_ms):
            value = float(data.values[-1])
            if not is_stale(value):
                samples.append(Sample(data.labels, time_ms, value))
        return samples


def _give(answer: Answer) -> QueryResult:
    if isinstance(answer, Exception):
        raise answer
    return answer


def double(
    answers: Mapping[str, Answer] | None = None, range_answers: Mapping[str, Answer] | None = None
) -> EngineFactory:
    return lambda store: DoubleEngine(store, answers or {}, range_answers or {})


def run(text: str, engine: EngineFactory | None = None) -> FileResult:
    return run_script(parse_script(text, "case.test"), engine or double())


def only_case(text: str, engine: EngineFactory | None = None) -> CaseResult:
    (case,) = run(text, engine).cases
    return case


def vector(*samples: tuple[dict[str, str], float]) -> QueryResult:
    return QueryResult(
        Vector([Sample(tuple(sorted(labels.items())), 0, v) for labels, v in samples])
    )


def matrix(*series: tuple[dict[str, str], list[int], list[float]]) -> QueryResult:
    return QueryResult(
        Matrix(
            [
                MatrixSeries(
                    tuple(sorted(labels.items())),
                    np.array(ts, dtype=np.int64),
                    np.array(vs, dtype=np.float64),
                )
                for labels, ts, vs in series
            ]
        )
    )


def assert_passed(case: CaseResult) -> None:
    assert case.status is CaseStatus.PASSED, case.reason
    assert case.reason == ""


def assert_failed(case: CaseResult, reason: str) -> None:
    assert case.status is CaseStatus.FAILED
    assert reason in case.reason


# --- loading and counting ------------------------------------------------------------------


def test_loaded_points_are_read_back_at_their_times() -> None:
    result = run(
        "load 5m\n"
        '  http_requests{job="api"} 0+10x3\n'
        "  gappy 1 _ _ 4\n"
        "  gone 1 stale\n"
        "\n"
        "eval instant at 10m http_requests\n"
        '  http_requests{job="api"} 20\n'
        "\n"
        "eval instant at 12m http_requests\n"
        '  http_requests{job="api"} 20\n'
        "\n"
        "eval instant at 4m gappy\n"  # lookback windows are left-open: (t-5m, t]
        "  gappy 1\n"
        "\n"
        "eval instant at 10m gappy\n"
        "\n"
        "eval instant at 5m gone\n"
    )
    assert [c.status for c in result.cases] == [CaseStatus.PASSED] * 5, result.cases
    assert (result.passed, result.failed, result.skipped) == (5, 0, 0)


def test_counts_and_line_numbers() -> None:
    result = run(
        "load 1m\n"
        "  a 1\n"
        "\n"
        "eval instant at 0 a\n"
        "  a 1\n"
        "\n"
        "eval instant at 0 a\n"
        "  a 2\n"
        "\n"
        "eval instant at 0 histogram_count(a)\n"
    )
    assert [(c.line, c.status) for c in result.cases] == [
        (4, CaseStatus.PASSED),
        (7, CaseStatus.FAILED),
        (10, CaseStatus.SKIPPED),
    ]
    assert (result.passed, result.failed, result.skipped) == (1, 1, 1)
    assert result.cases[1].expr == "a" and result.cases[1].kind == "instant"
    assert result.cases[1].source == "case.test"


def test_clear_empties_the_store() -> None:
    result = run("load 1m\n  a 1\n\nclear\n\neval instant at 0 a\n  a 1\n")
    assert_failed(result.cases[0], "expected series not in result: a 1")


def test_loads_add_up_and_each_run_starts_empty() -> None:
    text = (
        "load 1m\n  a 1\n\nload 1m\n  b 2\n\n"
        "eval instant at 0 a\n  a 1\n\neval instant at 0 b\n  b 2\n"
    )
    for _ in range(2):
        assert run(text).passed == 2


def test_on_case_reports_each_case() -> None:
    seen: list[int] = []
    script = parse_script("eval instant at 0 1\n  1\n\neval instant at 0 2\n  2\n")
    run_script(script, double(), lambda case: seen.append(case.line))
    assert seen == [1, 4]


def test_an_engine_crash_fails_that_case_only() -> None:
    engine = double({"boom": ZeroDivisionError("division by zero")})
    result = run("eval instant at 0 boom\n\neval instant at 0 1\n  1\n", engine)
    assert_failed(result.cases[0], "the engine crashed: ZeroDivisionError: division by zero")
    assert_passed(result.cases[1])


# --- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (1.0, 1.0, True),
        (1.0, 1.0000001, True),
        (1.0, 1.00001, False),
        (1e300, 1.0000001e300, True),
        (math.nan, math.nan, True),
        (math.nan, STALE_NAN, True),
        (math.nan, 0.0, False),
        (math.inf, math.inf, True),
        (math.inf, -math.inf, False),
        (math.inf, 1e308, False),
        (0.0, 1e-300, False),  # near zero only a vanishing absolute difference is allowed
        (0.0, -0.0, True),
    ],
)
def test_almost_equal(a: float, b: float, equal: bool) -> None:
    assert almost_equal(a, b) is equal
    assert almost_equal(b, a) is equal


def test_tolerance_in_results() -> None:
    engine = double({"x": vector(({"a": "b"}, 1.0000001)), "y": vector(({"a": "b"}, 1.00001))})
    assert_passed(only_case('eval instant at 0 x\n  {a="b"} 1\n', engine))
    assert_failed(
        only_case('eval instant at 0 y\n  {a="b"} 1\n', engine),
        'expected 1 for {a="b"}, got 1.00001',
    )


def test_nan_equals_nan() -> None:
    engine = double({"x": vector(({}, math.nan)), "y": vector(({}, 1.0))})
    assert_passed(only_case("eval instant at 0 x\n  {} NaN\n", engine))
    assert_failed(only_case("eval instant at 0 y\n  {} NaN\n", engine), "expected NaN for {}")


def test_labels_must_match_exactly() -> None:
    engine = double({"x": vector(({"__name__": "m", "a": "b"}, 1.0))})
    assert_passed(only_case('eval instant at 0 x\n  m{a="b"} 1\n', engine))
    assert_failed(
        only_case('eval instant at 0 x\n  {a="b"} 1\n', engine),
        'unexpected series m{a="b"} in result (value 1)',
    )
    assert_failed(
        only_case('eval instant at 0 x\n  m{a="b"} 1\n  m{a="c"} 2\n', engine),
        'expected series not in result: m{a="c"} 2',
    )


def test_scalar_and_vector_results_are_not_interchangeable() -> None:
    engine = double({"v": vector(({}, 1.0))})
    assert_passed(only_case("eval instant at 0 1\n  1\n", engine))
    assert_failed(
        only_case("eval instant at 0 1\n  {} 1\n", engine), "expected 1 series, got scalar 1"
    )
    assert_failed(
        only_case("eval instant at 0 v\n  1\n", engine),
        "expected scalar 1, got an instant vector of 1 sample",
    )
    assert_failed(only_case("eval instant at 0 2\n  1\n", engine), "expected scalar 1, got 2")


def test_empty_results() -> None:
    engine = double({"none": vector(), "some": vector(({"a": "b"}, 1.0))})
    assert_passed(only_case("eval instant at 0 none\n", engine))
    assert_failed(only_case("eval instant at 0 some\n", engine), 'unexpected series {a="b"}')
    assert_failed(
        only_case("eval instant at 0 1\n", engine), "expected an empty result, got scalar 1"
    )


# --- order -----------------------------------------------------------------------------------


def test_expect_ordered() -> None:
    engine = double({"sorted": vector(({"a": "2"}, 2.0), ({"a": "1"}, 1.0))})
    listed = '  {a="1"} 1\n  {a="2"} 2\n'
    assert_passed(only_case("eval instant at 0 sorted\n" + listed, engine))
    assert_failed(
        only_case("eval instant at 0 sorted\n  expect ordered\n" + listed, engine),
        'expected {a="2"} at position 2, but it was at 1',
    )
    assert_failed(only_case("eval_ordered instant at 0 sorted\n" + listed, engine), "at position 2")
    assert_passed(only_case('eval_ordered instant at 0 sorted\n  {a="2"} 2\n  {a="1"} 1\n', engine))


# --- expected failures -----------------------------------------------------------------------


def test_expect_fail() -> None:
    engine = double({"bad": QueryError("vector cannot contain metrics with the same labelset")})
    passing = [
        "expect fail",
        "expect fail msg: vector cannot contain metrics with the same labelset",
        "expect fail regex: cannot contain .*labelset",
    ]
    for line in passing:
        assert_passed(only_case(f"eval instant at 0 bad\n  {line}\n", engine))
    assert_failed(
        only_case("eval instant at 0 bad\n  expect fail msg: vector cannot contain\n", engine),
        "expected an error with message 'vector cannot contain', got: vector cannot contain "
        "metrics with the same labelset",
    )
    assert_failed(
        only_case("eval instant at 0 bad\n  expect fail regex: ^labelset\n", engine),
        "expected an error with pattern '^labelset'",
    )
    assert_failed(only_case("eval instant at 0 bad\n", engine), "query failed: vector cannot")
    assert_failed(
        only_case("eval instant at 0 1\n  expect fail\n", engine),
        "expected the query to fail, but it returned scalar 1",
    )


def test_deprecated_fail_spellings() -> None:
    engine = double({"bad": QueryError('invalid label name "a\\xc5z"')})
    assert_passed(only_case("eval_fail instant at 0 bad\n", engine))
    assert_passed(
        only_case(
            'eval_fail instant at 0 bad\n  expected_fail_message invalid label name "a\\xc5z"\n',
            engine,
        )
    )
    assert_passed(
        only_case("eval_fail instant at 0 bad\n  expected_fail_regexp invalid label\n", engine)
    )
    assert_failed(
        only_case("eval_fail instant at 0 bad\n  expected_fail_message other\n", engine),
        "expected an error with message 'other'",
    )


def test_a_failing_range_query() -> None:
    engine = double(range_answers={"bad": QueryError("boom")})
    assert_passed(
        only_case("eval range from 0 to 1m step 1m bad\n  expect fail msg: boom\n", engine)
    )
    assert_failed(only_case("eval range from 0 to 1m step 1m bad\n", engine), "query failed: boom")


# --- annotations -----------------------------------------------------------------------------


WARNING = "PromQL warning: quantile value should be between 0 and 1, got NaN"
INFO = 'PromQL info: metric might not be a counter, name does not end in one of: "_total"'


@pytest.mark.parametrize(
    ("expects", "reason"),
    [
        ("", None),  # a plain eval does not look at annotations
        ("expect warn", None),
        (f"expect warn msg: {WARNING}", None),
        ("expect warn regex: quantile value", None),
        ("expect info", None),
        ("expect info regex: counter", None),
        ("expect warn regex: quantile\n  expect info", None),
        ("expect warn msg: PromQL warning: other", "expected a warn annotation with message"),
        ("expect info regex: ^nothing", "expected a info annotation with pattern '^nothing'"),
        ("expect no_warn", "expected no warn annotations, got: "),
        ("expect no_info", "expected no info annotations, got: "),
    ],
)
def test_annotations(expects: str, reason: str | None) -> None:
    engine = double({"q": QueryResult(Vector([]), warnings=[WARNING], infos=[INFO])})
    case = only_case(
        f"eval instant at 0 q\n  {expects}\n" if expects else "eval instant at 0 q\n", engine
    )
    if reason is None:
        assert_passed(case)
    else:
        assert_failed(case, reason)


def test_every_annotation_must_be_expected_once_one_is() -> None:
    engine = double({"q": QueryResult(Vector([]), warnings=[WARNING, "PromQL warning: extra"])})
    assert_failed(
        only_case(f"eval instant at 0 q\n  expect warn msg: {WARNING}\n", engine),
        "unexpected warn annotation: 'PromQL warning: extra'",
    )
    assert_passed(
        only_case(
            f"eval instant at 0 q\n  expect warn msg: {WARNING}\n  expect warn regex: extra\n",
            engine,
        )
    )


def test_expected_annotations_that_do_not_come() -> None:
    engine = double({"q": vector()})
    assert_failed(
        only_case("eval instant at 0 q\n  expect warn\n", engine),
        "expected warn annotations, got none",
    )
    assert_failed(
        only_case("eval_info instant at 0 q\n", engine), "expected info annotations, got none"
    )
    assert_passed(only_case("eval instant at 0 q\n  expect no_warn\n  expect no_info\n", engine))


# --- range results -----------------------------------------------------------------------------


def test_range_results_with_gaps() -> None:
    result = run(
        "load 1m\n"
        '  m{a="x"} 0 _x6 7\n'
        "\n"
        "eval range from 0 to 8m step 1m m\n"
        '  m{a="x"} 0 0 0 0 0 _ _ 7 7\n'
        "\n"
        "eval range from 0 to 8m step 1m m\n"
        '  m{a="x"} 0 0 0 0 0 0 _ 7 7\n'
        "\n"
        "eval range from 0 to 8m step 1m m\n"
        '  m{a="x"} 0 0 0 0 0 _ _ 7\n'
        "\n"
        "eval range from 0 to 8m step 1m m\n"
        '  m{a="x"} 0 0 0 0 0 _ _ 7 8\n'
        "\n"
        "eval range from 0 to 2m step 1m m\n"
        '  m{a="x"} 0 0 0 0\n'
    )
    first, extra_point, missing_point, wrong_value, too_many = result.cases
    assert_passed(first)
    assert first.kind == "range"
    assert_failed(extra_point, 'expected 8 points for m{a="x"}, got 7: [0@0s 0@1m 0@2m')
    assert_failed(missing_point, 'expected 6 points for m{a="x"}, got 7')
    assert_failed(wrong_value, 'expected 8 at 8m for m{a="x"}, got 7')
    assert_failed(too_many, 'points are expected for m{a="x"}, more than the steps from 0s to 2m')


def test_range_point_times_must_match() -> None:
    engine = double(range_answers={"q": matrix(({}, [0, 90_000], [1.0, 2.0]))})
    assert_failed(
        only_case("eval range from 0 to 2m step 1m q\n  {} 1 2 _\n", engine),
        "expected a point at 1m for {}, got one at 1m30s",
    )


def test_range_series_must_be_sorted_and_complete() -> None:
    unsorted = matrix(({"a": "2"}, [0], [1.0]), ({"a": "1"}, [0], [1.0]))
    engine = double(range_answers={"unsorted": unsorted, "one": matrix(({"a": "1"}, [0], [1.0]))})
    assert_failed(
        only_case('eval range from 0 to 0 step 1m unsorted\n  {a="1"} 1\n  {a="2"} 1\n', engine),
        'must be sorted by labels, but {a="2"} comes before {a="1"}',
    )
    assert_failed(
        only_case('eval range from 0 to 0 step 1m one\n  {a="1"} 1\n  {a="2"} 1\n', engine),
        'expected series not in result: {a="2"}',
    )
    assert_failed(
        only_case('eval range from 0 to 0 step 1m one\n  expect ordered\n  {a="1"} 1\n', engine),
        "expect ordered does not apply to a range query",
    )
    assert_failed(
        only_case("eval range from 0 to 0 step 1m one\n", engine),
        'unexpected series {a="1"} in result: [1@0s]',
    )


def test_a_range_query_must_return_a_matrix() -> None:
    engine = double(range_answers={"q": vector(({}, 1.0))})
    assert_failed(
        only_case("eval range from 0 to 0 step 1m q\n  {} 1\n", engine),
        "a range query must return a range vector, got an instant vector of 1 sample",
    )


def test_instant_evals_are_checked_in_range_mode_too() -> None:
    instant = vector(({"a": "b"}, 1.0))
    different = matrix(({"a": "b"}, [0, 60_000, 120_000], [1.0, 5.0, 1.0]))
    engine = double({"q": instant, "ordered": instant}, {"q": different, "ordered": different})
    assert_failed(
        only_case('eval instant at 1m q\n  {a="b"} 1\n', engine),
        'as a range query from 0s to 2m step 1m: expected 1 for {a="b"}, got 5',
    )
    # Range results are sorted by labels, so ordered cases are not compared in range mode.
    assert_passed(only_case('eval instant at 1m ordered\n  expect ordered\n  {a="b"} 1\n', engine))
    failing = double({"q": instant}, {"q": QueryError("no range for you")})
    assert_failed(
        only_case('eval instant at 1m q\n  {a="b"} 1\n', failing),
        "as a range query from 0s to 2m step 1m: query failed: no range for you",
    )


# --- skipped cases ---------------------------------------------------------------------------


NATIVE = (
    "load 5m\n"
    '  http_requests{job="api"} 1 2 3\n'
    '  hist{job="api"} {{schema:0 sum:1 count:1}}x2\n'
    "  mixed 1 {{schema:0 sum:1 count:1}}\n"
    "\n"
)


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("hist", 'selects hist{job="api"}, which was loaded with native histogram samples'),
        ("rate(hist[5m])", 'selects hist{job="api"}'),
        ("sum_over_time(mixed[10m:1m])", "selects mixed"),
        ('{__name__=~"h.*"}', "selects hist"),
        ('{job="api"}', "selects hist"),
        ("http_requests + on() group_left() hist", "selects hist"),
        ("histogram_count(http_requests)", "calls histogram_count()"),
        ("histogram_fraction(0, 1, http_requests)", "calls histogram_fraction()"),
        ("histogram_avg(x)", "calls histogram_avg()"),
        ("histogram_stddev(x)", "calls histogram_stddev()"),
        ("histogram_stdvar(x)", "calls histogram_stdvar()"),
        ("histogram_sum(x)", "calls histogram_sum()"),
    ],
)
def test_native_histogram_cases_are_skipped(expr: str, reason: str) -> None:
    result = run(NATIVE + f"eval instant at 5m {expr}\n")
    (case,) = result.cases
    assert case.status is CaseStatus.SKIPPED
    assert case.native_histograms
    assert case.reason.startswith("needs native histograms: ")
    assert reason in case.reason
    assert result.native_histogram_cases == 1


@pytest.mark.parametrize(
    "expr",
    [
        "http_requests",
        'http_requests{job="api"}',
        '{__name__=~"http.*"}',
        'hist{job="other"}',
        "histogram_quantile(0.5, http_requests)",
    ],
)
def test_float_cases_next_to_histograms_run(expr: str) -> None:
    case = only_case(NATIVE + f"eval instant at 5m {expr}\n", double({expr: vector()}))
    assert case.status is not CaseStatus.SKIPPED
    assert not case.native_histograms


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("histogram_count(http_requests", "calls histogram_count()"),
        ("rate(hist[5m]", "mentions hist, which has native histogram samples"),
    ],
)
def test_expressions_the_parser_cannot_read_are_judged_by_their_names(
    expr: str, reason: str
) -> None:
    case = only_case(NATIVE + f"eval instant at 5m {expr}\n")
    assert case.status is CaseStatus.SKIPPED
    assert reason in case.reason


def test_an_unreadable_float_expression_runs() -> None:
    engine = double({"rate(http_requests[5m]": QueryError("unclosed left parenthesis")})
    case = only_case(NATIVE + "eval instant at 5m rate(http_requests[5m]\n  expect fail\n", engine)
    assert_passed(case)


def test_expected_native_histograms_are_skipped() -> None:
    case = only_case("eval instant at 0 foo\n  foo {{schema:0 sum:1 count:1}}\n")
    assert case.status is CaseStatus.SKIPPED
    assert "the expected result has native histogram samples" in case.reason


def test_custom_bucket_histograms_from_load_with_nhcb() -> None:
    setup = (
        "load_with_nhcb 5m\n"
        '  lat_bucket{le="0.1", job="a"} 0+1x2\n'
        '  lat_bucket{le="+Inf", job="a"} 0+2x2\n'
        '  lat_count{job="a"} 0+2x2\n'
        '  lat_sum{job="a"} 0+3x2\n'
        "\n"
    )
    engine = double({"lat_bucket": vector()})
    result = run(setup + "eval instant at 5m lat\n\neval instant at 5m lat_bucket\n", engine)
    native, classic = result.cases
    assert native.status is CaseStatus.SKIPPED
    assert 'selects lat{job="a"}' in native.reason
    assert_passed(classic)


def test_clear_forgets_histogram_series() -> None:
    result = run(NATIVE + "clear\nload 5m\n  hist 1\n\neval instant at 0 hist\n  hist 1\n")
    assert_passed(result.cases[0])


def test_a_failure_is_never_turned_into_a_skip() -> None:
    case = only_case("eval instant at 0 unknown_function(1)\n")
    assert case.status is CaseStatus.FAILED
    assert not case.native_histograms


# --- the CLI -----------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., tuple[int, str, str]]]:
    monkeypatch.setattr(promql_cli, "engine_factory", double())
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, ["promql", "test", *args])
        return result.exit_code, result.stdout, result.stderr

    yield invoke


GOOD = "load 1m\n  a 1\n\neval instant at 0 a\n  a 1\n\neval instant at 0 histogram_sum(a)\n"
BAD = "load 1m\n  a 1\n\neval instant at 0 a\n  a 2\n\neval instant at 0 a\n  a 1\n"


def write(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.write_text(text)
    return str(path)


def test_cli_all_passing(cli: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    code, out, _ = cli(write(tmp_path, "good.test", GOOD))
    assert code == 0
    assert out.splitlines() == [
        "PASS good.test: 1 passed, 0 failed, 1 skipped",
        "1 passed, 0 failed, 1 skipped",
    ]


def test_cli_failures(cli: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    files = [write(tmp_path, "good.test", GOOD), write(tmp_path, "bad.test", BAD)]
    code, out, _ = cli(*files)
    assert code == 1
    assert out.splitlines() == [
        "PASS good.test: 1 passed, 0 failed, 1 skipped",
        "FAIL bad.test: 1 passed, 1 failed, 0 skipped",
        "2 passed, 1 failed, 1 skipped",
    ]


def test_cli_verbose_lists_failed_and_skipped_cases(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    files = [write(tmp_path, "good.test", GOOD), write(tmp_path, "bad.test", BAD)]
    code, out, _ = cli("--verbose", *files)
    assert code == 1
    assert out.splitlines() == [
        "PASS good.test: 1 passed, 0 failed, 1 skipped",
        "  good.test:7: SKIPPED histogram_sum(a)",
        "      needs native histograms: calls histogram_sum(), which only works on them",
        "FAIL bad.test: 1 passed, 1 failed, 0 skipped",
        "  bad.test:4: FAILED a",
        "      expected 2 for a, got 1",
        "2 passed, 1 failed, 1 skipped",
    ]
    _, short_flag_out, _ = cli("-v", *files)
    assert short_flag_out == out


def test_cli_same_base_names_show_their_paths(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first, second = write(tmp_path / "one", "x.test", GOOD), write(tmp_path / "two", "x.test", GOOD)
    _, out, _ = cli(first, second)
    assert out.splitlines()[:2] == [
        f"PASS {first}: 1 passed, 0 failed, 1 skipped",
        f"PASS {second}: 1 passed, 0 failed, 1 skipped",
    ]


def test_cli_json(cli: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    files = [write(tmp_path, "good.test", GOOD), write(tmp_path, "bad.test", BAD)]
    code, out, _ = cli("--json", *files)
    assert code == 1
    document = json.loads(out)
    assert document["totals"] == {"passed": 2, "failed": 1, "skipped": 1}
    good, bad = document["files"]
    assert (good["file"], good["status"], good["passed"], good["skipped"]) == (
        "good.test",
        "pass",
        1,
        1,
    )
    assert good["cases"] == [
        {"line": 4, "kind": "instant", "expr": "a", "status": "passed", "reason": None},
        {
            "line": 7,
            "kind": "instant",
            "expr": "histogram_sum(a)",
            "status": "skipped",
            "reason": "needs native histograms: calls histogram_sum(), which only works on them",
        },
    ]
    assert bad["status"] == "fail"
    assert bad["cases"][0] == {
        "line": 4,
        "kind": "instant",
        "expr": "a",
        "status": "failed",
        "reason": "expected 2 for a, got 1",
    }


def test_cli_syntax_error(cli: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    good = write(tmp_path, "good.test", GOOD)
    broken = write(tmp_path, "broken.test", "load 5m\n  a 1\n  b 1+\n")
    code, out, err = cli(good, broken)
    assert code == 2
    assert out == ""  # nothing runs when a script is invalid
    assert "error: broken.test:3: invalid point '1+'" in err
    code, out, _ = cli("--json", broken)
    assert code == 2
    (error,) = json.loads(out)["errors"]
    assert (error["file"], error["line"]) == ("broken.test", 3)
    assert error["message"].startswith("invalid point '1+'")


def test_cli_unreadable_file(cli: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    missing = tmp_path / "missing.test"
    code, _, err = cli(str(missing))
    assert code == 2
    assert f"error: {missing}: cannot read the test file: No such file or directory" in err
    binary = tmp_path / "binary.test"
    binary.write_bytes(b"\xff\xfe\x00")
    code, _, err = cli(str(binary))
    assert code == 2
    assert f"error: {binary}: cannot read the test file" in err


def test_cli_needs_a_file() -> None:
    result = CliRunner().invoke(app, ["promql", "test"])
    assert result.exit_code == 2
    assert "Missing argument 'FILE'" in result.stderr


def test_cli_with_the_real_engine(tmp_path: Path) -> None:
    pytest.importorskip("opsbook.metrics.promql", reason="opsbook's PromQL engine is not built yet")
    path = write(
        tmp_path, "real.test", 'load 5m\n  a{x="1"} 0+1x4\n\neval instant at 10m a\n  a{x="1"} 2\n'
    )
    result = CliRunner().invoke(app, ["promql", "test", path])
    assert result.stdout.splitlines()[-1] == "1 passed, 0 failed, 0 skipped", result.stdout
    assert result.exit_code == 0
