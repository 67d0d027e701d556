"""The PromQL test-language parser: durations, numbers, point expansions, commands, errors."""

from __future__ import annotations

import math

import pytest

from opsbook.metrics.model import is_stale
from opsbook.metrics.promqltest.script import (
    Clear,
    EvalInstant,
    EvalRange,
    ExpectKind,
    HistogramPoint,
    Load,
    ScriptError,
    expand_points,
    parse_duration,
    parse_number,
    parse_script,
    parse_series_line,
)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("0", 0),
        ("0s", 0),
        ("100ms", 100),
        ("30s", 30_000),
        ("5m", 300_000),
        ("5m30s", 330_000),
        ("1h", 3_600_000),
        ("1h30m", 5_400_000),
        ("1d", 86_400_000),
        ("1w", 604_800_000),
        ("1y", 31_536_000_000),
        ("2h5m10s20ms", 7_510_020),
    ],
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "5", "1.5m", "-1m", "1m1h", "5M", "m", "1h 2m"])
def test_invalid_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1.0),
        ("-1", -1.0),
        ("12340000", 12340000.0),
        ("0x10", 16.0),
        ("017", 15.0),  # Go reads a leading zero as octal
        ("08", 8.0),  # not octal, so a float
        ("1_000", 1000.0),
        ("0.00001234", 0.00001234),
        ("-0.0000002", -0.0000002),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("2.", 2.0),
        ("+Inf", math.inf),
        ("-Inf", -math.inf),
        ("inf", math.inf),
        ("0x1p-2", 0.25),
    ],
)
def test_scalar_numbers(text: str, value: float) -> None:
    assert parse_number(text) == value


def test_nan_is_a_number() -> None:
    number = parse_number("NaN")
    assert number is not None and math.isnan(number)


@pytest.mark.parametrize("text", ["foo", "{} 1", "1 2", "1x3", "", "0x", "1e"])
def test_not_numbers(text: str) -> None:
    assert parse_number(text) is None


@pytest.mark.parametrize(
    ("text", "points"),
    [
        ("1 2 3", [1.0, 2.0, 3.0]),
        ("_", [None]),
        ("1 _ 3", [1.0, None, 3.0]),
        ("_x3", [None, None, None]),
        ("1x3", [1.0, 1.0, 1.0, 1.0]),
        ("1+2x3", [1.0, 3.0, 5.0, 7.0]),
        ("1-1x3", [1.0, 0.0, -1.0, -2.0]),
        ("-1+1x3", [-1.0, 0.0, 1.0, 2.0]),
        ("-2x2", [-2.0, -2.0, -2.0]),
        ("0+10x2 100", [0.0, 10.0, 20.0, 100.0]),
        ("10+0x0", [10.0]),
        ("1e3x1", [1000.0, 1000.0]),
        ("0x3", [0.0, 0.0, 0.0, 0.0]),  # no hexadecimal in series values
        ("Inf -Inf", [math.inf, -math.inf]),
        ("", []),
    ],
)
def test_point_expansion(text: str, points: list[float | None]) -> None:
    assert expand_points(text) == points


def test_step_expansion_adds_repeatedly() -> None:
    # Prometheus adds the step again and again; 0.1 three times is not 0.3.
    assert expand_points("0.1+0.1x2") == [0.1, 0.1 + 0.1, 0.1 + 0.1 + 0.1]
    assert expand_points("0.1+0.1x2")[2] != 0.3


def test_nan_and_stale_points() -> None:
    nan, stale = expand_points("NaN stale")
    assert isinstance(nan, float) and math.isnan(nan) and not is_stale(nan)
    assert isinstance(stale, float) and is_stale(stale)


def test_native_histogram_points_are_recognized() -> None:
    points = expand_points(
        "0 {{schema:1 sum:3 count:22 buckets:[5 10 7]}} _ {{schema:0 sum:1 count:1}}x2 "
        "{{schema:0 sum:1 count:1}}+{{schema:0 sum:2 count:2}}x1 5"
    )
    assert points[0] == 0.0
    assert points[1] == HistogramPoint("schema:1 sum:3 count:22 buckets:[5 10 7]")
    assert points[2] is None
    assert points[3:6] == [HistogramPoint("schema:0 sum:1 count:1")] * 3
    assert all(isinstance(p, HistogramPoint) for p in points[6:8])
    assert points[8] == 5.0
    assert len(points) == 9


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("1+2", "invalid point '1\\+2'"),
        ("1x", "invalid point"),
        ("abc", "invalid point 'abc'"),
        ("1++2x3", "invalid point"),
        ("{{schema:0", "unterminated native histogram"),
        ("{{schema:0}}+", "invalid native histogram point"),
        ("1x99999999", "more than"),
    ],
)
def test_invalid_points(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        expand_points(text)


def test_series_line_labels() -> None:
    spec = parse_series_line('http_requests{job="api", instance="0"}\t0+10x2', 4)
    assert spec.labels == (("__name__", "http_requests"), ("instance", "0"), ("job", "api"))
    assert spec.points == (0.0, 10.0, 20.0)
    assert spec.line == 4
    assert not spec.has_histograms


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("metric 1", (("__name__", "metric"),)),
        ("{} 1", ()),
        ('{a="b"} 1', (("a", "b"),)),
        ("{a='b', c=`d\\n`,} 1", (("a", "b"), ("c", "d\\n"))),
        ('m{a="x y, {z}"} 1', (("__name__", "m"), ("a", "x y, {z}"))),
        (r'm{a="q\"\\\n\u00e9"} 1', (("__name__", "m"), ("a", 'q"\\\né'))),
        ('m{a=""} 1', (("__name__", "m"),)),  # an empty value is no label
        ('{"my.metric", "some.label"="v"} 1', (("__name__", "my.metric"), ("some.label", "v"))),
        ('{__name__="m", a="b"} 1', (("__name__", "m"), ("a", "b"))),
        ("ns:metric:rate5m 1", (("__name__", "ns:metric:rate5m"),)),
    ],
)
def test_series_line_label_forms(text: str, labels: tuple[tuple[str, str], ...]) -> None:
    assert parse_series_line(text, 1).labels == labels


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('m{a="b", a="c"} 1', "given twice"),
        ('m{a="b" 1', "expected ',' or '}'"),
        ('m{a="b} 1', "unterminated quoted string"),
        ("m{a=b} 1", "needs a quoted value"),
        ('m{a="\\q"} 1', "unknown escape"),
        ("1 2 3", "expected a series"),
        ('m{a="b"}x 1', "expected a space"),
    ],
)
def test_invalid_series_lines(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_series_line(text, 1)


SCRIPT = """\
# Comment lines are ignored.
load 5m
    http_requests{job="api"}  0+10x3
    other 1 _ stale

load_with_nhcb 1m
    h_bucket{le="1"} 0+1x2

clear

eval instant at 10m http_requests
    http_requests{job="api"} 20

eval range from 0 to 10m step 5m sum(http_requests)
    {} 0 10 _

eval instant at 1m 1 + 1
    2
"""


def test_commands() -> None:
    script = parse_script(SCRIPT, "demo.test")
    load, nhcb, clear, instant, ranged, scalar = script.commands
    assert script.source == "demo.test"
    assert isinstance(load, Load) and load.line == 2 and load.interval_ms == 300_000
    assert not load.with_nhcb
    assert [s.labels[0] for s in load.series] == [
        ("__name__", "http_requests"),
        ("__name__", "other"),
    ]
    other = load.series[1].points
    assert other[0] == 1.0 and other[1] is None and isinstance(other[2], float)
    assert is_stale(other[2])
    assert isinstance(nhcb, Load) and nhcb.with_nhcb and nhcb.interval_ms == 60_000
    assert clear == Clear(9)
    assert isinstance(instant, EvalInstant)
    assert (instant.line, instant.expr, instant.time_ms) == (11, "http_requests", 600_000)
    assert instant.expected_series[0].points == (20.0,)
    assert instant.expected_scalar is None and instant.expectations == ()
    assert isinstance(ranged, EvalRange)
    assert (ranged.start_ms, ranged.end_ms, ranged.step_ms) == (0, 600_000, 300_000)
    assert ranged.expr == "sum(http_requests)"
    assert ranged.expected_series[0].labels == ()
    assert ranged.expected_series[0].points == (0.0, 10.0, None)
    assert isinstance(scalar, EvalInstant) and scalar.expected_scalar == 2.0
    assert scalar.expr == "1 + 1"
    assert script.evals == [instant, ranged, scalar]


def test_expect_lines() -> None:
    script = parse_script(
        "eval instant at 0 foo\n"
        "  expect fail msg: something went wrong\n"
        "\n"
        "eval instant at 0 foo\n"
        "  expect fail regex: went (wrong|boom)\n"
        "\n"
        "eval range from 0 to 1m step 1m foo\n"
        "  expect warn\n"
        "  expect warn msg:  PromQL warning: x  \n"
        "  expect no_info\n"
        "  {} 1 2\n"
        "\n"
        "eval instant at 1m sum by (env) (foo)\n"
        "  expect ordered\n"
        "  expect info regex: counter\n"
        "  expect no_warn\n"
        '  {env="a"} 1\n'
        '  {env="b"} 2\n'
    )
    message, regex, warn, ordered = script.evals
    (fail,) = message.expectations
    assert fail.kind is ExpectKind.FAIL and fail.message == "something went wrong"
    assert fail.matches("something went wrong") and not fail.matches("something went wrong!")
    assert message.expects_failure and fail.line == 2
    (fail_re,) = regex.expectations
    assert fail_re.pattern is not None and fail_re.matches("it went boom, sadly")
    assert [e.kind for e in warn.expectations] == [
        ExpectKind.WARN,
        ExpectKind.WARN,
        ExpectKind.NO_INFO,
    ]
    assert warn.expectations[0].matches("anything at all")
    assert warn.expectations[1].message == "PromQL warning: x"
    assert ordered.ordered and not ordered.expects_failure
    assert [s.labels for s in ordered.expected_series] == [(("env", "a"),), (("env", "b"),)]


def test_deprecated_spellings() -> None:
    script = parse_script(
        "eval_fail instant at 0 foo\n"
        "  expected_fail_message vector cannot contain metrics with the same labelset\n"
        "\n"
        "eval_fail instant at 0 foo\n"
        "  expected_fail_regexp cannot (contain|hold)\n"
        "\n"
        "eval_warn instant at 0 foo\n"
        "\n"
        "eval_info range from 0 to 5m step 1m foo\n"
        "\n"
        "eval_ordered instant at 50m sort(foo)\n"
        "  foo 1\n"
    )
    fail_message, fail_regexp, warn, info, ordered = script.evals
    assert [(e.kind, e.message) for e in fail_message.expectations] == [
        (ExpectKind.FAIL, None),
        (ExpectKind.FAIL, "vector cannot contain metrics with the same labelset"),
    ]
    assert fail_regexp.expectations[1].matches("vector cannot hold that")
    assert [e.kind for e in warn.expectations] == [ExpectKind.WARN]
    assert isinstance(info, EvalRange) and [e.kind for e in info.expectations] == [ExpectKind.INFO]
    assert ordered.ordered


def test_blank_and_comment_lines_end_a_block() -> None:
    script = parse_script("load 1m\n  a 1\n\n  # comment\nclear\neval instant at 0 a\n  a 1\n")
    load, clear, instant = script.commands
    assert isinstance(load, Load) and len(load.series) == 1
    assert isinstance(clear, Clear) and isinstance(instant, EvalInstant)


def test_a_series_defined_twice_in_one_load_keeps_the_last() -> None:
    (load,) = parse_script("load 1m\n  a 1 2\n  a 3\n").commands
    assert isinstance(load, Load)
    assert [s.points for s in load.series] == [(3.0,)]


def test_expected_values_end_after_a_scalar() -> None:
    script = parse_script("eval instant at 0 1\n  1\nclear\n")
    assert isinstance(script.commands[1], Clear)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("load 5m\n  a 1\n\nbogus command\n", 4, "unknown command 'bogus command'"),
        ("load\n", 1, "invalid load command"),
        ("load 5\n", 1, "invalid load interval: not a duration: '5'"),
        ("load 5m\n  a 1\n  b 1+2\n", 3, "invalid point '1\\+2'"),
        ('load 5m\n  a{x="1} 1\n', 2, "unterminated quoted string"),
        ("eval instant foo\n", 1, "eval instant needs a time"),
        ("eval instant at 5 foo\n", 1, "invalid evaluation time"),
        ("evaluate at 5m foo\n", 1, "invalid eval command"),
        ("eval range from 10m to 5m step 1m foo\n", 1, "end time 5m is before the start"),
        ("eval range from 0 to 5m step x foo\n", 1, "invalid step"),
        ("\n\neval instant at 0 foo\n  foo 1 2\n", 4, "one value per series, got 2"),
        ("eval instant at 0 foo\n  expect bogus\n", 2, "invalid expect line"),
        ("eval instant at 0 foo\n  expect ordered msg: x\n", 2, "takes no msg"),
        ("eval instant at 0 foo\n  expect info\n  expect no_info\n", 3, "contradict"),
        ("eval instant at 0 foo\n  expect warn\n  expect no_warn\n", 3, "contradict"),
        ("eval instant at 0 foo\n  expect fail\n  expect fail msg: x\n", 3, "only one"),
        ("eval instant at 0 foo\n  expected_fail_message x\n", 2, "only allowed after eval_fail"),
        ("eval_fail instant at 0 foo\n  expected_fail_regexp (\n", 2, "invalid regular expression"),
        ("eval instant at 0 foo\n  expect fail regex: [\n", 2, "invalid regular expression"),
        ("eval instant at 0 foo\n  {} 1\n  2\n", 3, "either series or one scalar"),
    ],
)
def test_errors_name_file_and_line(text: str, line: int, problem: str) -> None:
    with pytest.raises(ScriptError, match=problem) as caught:
        parse_script(text, "bad.test")
    assert caught.value.line == line
    assert caught.value.source == "bad.test"
    assert str(caught.value).startswith(f"bad.test:{line}: ")
