"""The exposition parser: text format and OpenMetrics bodies, errors, limits, the series cache,
and agreement with ``prometheus_client``'s parser on generated bodies."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as text_families

from opsbook.metrics.exposition import (
    ExpositionError,
    ExpositionLimitError,
    ParsedExposition,
    ParseLimits,
    SeriesCache,
    parse_exposition,
)
from opsbook.metrics.model import Labels, is_stale, labels_from_mapping

TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

Row = tuple[Labels, float, int | None]


def rows(parsed: ParsedExposition) -> list[Row]:
    assert len(parsed.series) == len(parsed.values) == len(parsed.timestamps_ms)
    return [
        (labels, float(value), stamp)
        for labels, value, stamp in zip(
            parsed.series, parsed.values, parsed.timestamps_ms, strict=True
        )
    ]


def lbl(name: str, **labels: str) -> Labels:
    return labels_from_mapping({"__name__": name, **labels})


def same_rows(got: list[Row], expected: list[Row]) -> bool:
    """Equal, with NaN equal to NaN."""
    if len(got) != len(expected):
        return False
    for (labels, value, stamp), (want_labels, want_value, want_stamp) in zip(
        got, expected, strict=True
    ):
        both_nan = math.isnan(value) and math.isnan(want_value)
        if labels != want_labels or stamp != want_stamp or not (both_nan or value == want_value):
            return False
    return True


# --- text format ---------------------------------------------------------------------------

TEXT_BODY = r"""# HELP http_requests_total Requests handled.
# TYPE http_requests_total counter
http_requests_total{route="/a",code="200"} 1027 1395066363000
http_requests_total{route="/a",code="400"} 3 1395066363000

# A comment that is not HELP or TYPE is ignored, as are blank lines.
#   TYPE-looking text in a comment does not count
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find:\n\"FILE\""} 1.458e9
odd_values{kind="nan"} NaN
odd_values{kind="plus_inf"} +Inf
odd_values{kind="minus_inf"} -Inf
odd_values{kind="inf"} Inf
odd_values{kind="negative"} -1.5e-3
empty_label{a="",b="kept",c=""} 1
trailing_comma{a="1",} 2
blanks_inside { a = "1" , b="x y" } 3
tabs_between_tokens{a="1"}	4	1000
unknown_escape{a="tab\there"} 5
labels_sorted{zeta="z",alpha="a",mid="m"} 6
"""


def test_a_text_format_body_parses_as_prometheus_reads_it() -> None:
    parsed = parse_exposition(TEXT_BODY.encode(), TEXT)
    assert rows(parsed)[:7] == [
        (lbl("http_requests_total", route="/a", code="200"), 1027.0, 1395066363000),
        (lbl("http_requests_total", route="/a", code="400"), 3.0, 1395066363000),
        (lbl("http_request_duration_seconds_bucket", le="0.05"), 24054.0, None),
        (lbl("http_request_duration_seconds_bucket", le="+Inf"), 144320.0, None),
        (lbl("http_request_duration_seconds_sum"), 53423.0, None),
        (lbl("http_request_duration_seconds_count"), 144320.0, None),
        (
            lbl(
                "msdos_file_access_time_seconds",
                path="C:\\DIR\\FILE.TXT",
                error='Cannot find:\n"FILE"',
            ),
            1.458e9,
            None,
        ),
    ]
    nan_labels, nan_value, _ = rows(parsed)[7]
    assert nan_labels == lbl("odd_values", kind="nan")
    assert math.isnan(nan_value) and not is_stale(nan_value)  # NaN, not the stale marker
    assert rows(parsed)[8:] == [
        (lbl("odd_values", kind="plus_inf"), math.inf, None),
        (lbl("odd_values", kind="minus_inf"), -math.inf, None),
        (lbl("odd_values", kind="inf"), math.inf, None),
        (lbl("odd_values", kind="negative"), -1.5e-3, None),
        ((("__name__", "empty_label"), ("b", "kept")), 1.0, None),
        (lbl("trailing_comma", a="1"), 2.0, None),
        (lbl("blanks_inside", a="1", b="x y"), 3.0, None),
        (lbl("tabs_between_tokens", a="1"), 4.0, 1000),
        (lbl("unknown_escape", a="tab\\there"), 5.0, None),
        (
            (("__name__", "labels_sorted"), ("alpha", "a"), ("mid", "m"), ("zeta", "z")),
            6.0,
            None,
        ),
    ]
    assert parsed.types == {
        "http_requests_total": "counter",
        "http_request_duration_seconds": "histogram",
    }
    assert parsed.values.dtype == np.float64


def test_str_and_bytes_bodies_and_missing_content_type_are_the_text_format() -> None:
    body = 'up{job="a"} 1 1000\n'
    expected = [(lbl("up", job="a"), 1.0, 1000)]
    assert rows(parse_exposition(body, None)) == expected
    assert rows(parse_exposition(body.encode(), "text/plain")) == expected
    assert rows(parse_exposition(body.encode(), "")) == expected


def test_a_last_line_without_newline_and_an_empty_body_are_fine() -> None:
    assert rows(parse_exposition("a 1\nb 2", TEXT)) == [
        (lbl("a"), 1.0, None),
        (lbl("b"), 2.0, None),
    ]
    empty = parse_exposition(b"", TEXT)
    assert empty.series == [] and len(empty.values) == 0 and empty.types == {}


def test_quoted_utf8_names_of_prometheus_3() -> None:
    body = (
        '# TYPE "http.server.duration" gauge\n'
        '{"http.server.duration", "service.name"="api", code="200"} 0.5\n'
    )
    parsed = parse_exposition(body, TEXT)
    assert rows(parsed) == [
        (lbl("http.server.duration", **{"service.name": "api", "code": "200"}), 0.5, None)
    ]
    assert parsed.types == {"http.server.duration": "gauge"}


# --- OpenMetrics ---------------------------------------------------------------------------

OPENMETRICS_BODY = """# TYPE acme_http_router_request_seconds summary
# UNIT acme_http_router_request_seconds seconds
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.
acme_http_router_request_seconds_sum{path="/api/v1",method="GET"} 9036.32
acme_http_router_request_seconds_count{path="/api/v1",method="GET"} 807283.0
acme_http_router_request_seconds_created{path="/api/v1",method="GET"} 1605281325.0
# TYPE foo counter
foo_total 17.0 1520879607.789 # {trace_id="KOO5S4vxi0o"} 0.67
foo_created 1520430000.123
# TYPE bar histogram
bar_bucket{le="0.5"} 1 1520879607 # {trace_id="x"} 0.3 1520879607.5
bar_bucket{le="+Inf"} 2 1520879607
bar_count 2 1520879607
bar_sum 0.7 1520879607
bar_created 1520430000
# TYPE job_created gauge
job_created 1520430000
# TYPE up unknown
up NaN
# EOF
"""


def test_an_openmetrics_body_follows_openmetrics_rules() -> None:
    parsed = parse_exposition(OPENMETRICS_BODY.encode(), OPENMETRICS)
    got = rows(parsed)
    expected: list[Row] = [
        (lbl("acme_http_router_request_seconds_sum", path="/api/v1", method="GET"), 9036.32, None),
        (
            lbl("acme_http_router_request_seconds_count", path="/api/v1", method="GET"),
            807283.0,
            None,
        ),
        # foo_created, bar_created and the summary's _created are dropped; timestamps are
        # seconds, exemplars are ignored.
        (lbl("foo_total"), 17.0, 1520879607789),
        (lbl("bar_bucket", le="0.5"), 1.0, 1520879607000),
        (lbl("bar_bucket", le="+Inf"), 2.0, 1520879607000),
        (lbl("bar_count"), 2.0, 1520879607000),
        (lbl("bar_sum"), 0.7, 1520879607000),
        # A gauge whose name ends in _created is an ordinary gauge.
        (lbl("job_created"), 1520430000.0, None),
        (lbl("up"), math.nan, None),
    ]
    assert same_rows(got, expected), got
    assert parsed.types == {
        "acme_http_router_request_seconds": "summary",
        "foo": "counter",
        "bar": "histogram",
        "job_created": "gauge",
        "up": "unknown",
    }


def test_the_content_type_picks_the_timestamp_unit() -> None:
    text = parse_exposition("a 1 1500\n", TEXT)
    openmetrics = parse_exposition("a 1 1500\n# EOF\n", OPENMETRICS)
    assert text.timestamps_ms == [1500]
    assert openmetrics.timestamps_ms == [1_500_000]
    # Milliseconds written with three decimals come back exact, not one off.
    assert parse_exposition("a 1 1.001\n# EOF", OPENMETRICS).timestamps_ms == [1001]


def test_eof_may_end_the_body_with_or_without_a_newline() -> None:
    assert len(parse_exposition("a 1\n# EOF", OPENMETRICS).values) == 1
    assert len(parse_exposition("# EOF\n", OPENMETRICS).values) == 0


# --- errors --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadBody:
    body: str | bytes
    content_type: str
    line: int
    reason: str


BAD_BODIES = {
    "html page": BadBody(
        "<!DOCTYPE html>\n<html><body>Login</body></html>\n", TEXT, 1, "HTML or XML"
    ),
    "bad value": BadBody('a 1\nb 2\nc{x="1"} twelve\n', TEXT, 3, "invalid value 'twelve'"),
    "no value": BadBody("a 1\nlonely_metric\n", TEXT, 2, "has no value"),
    "unterminated quote": BadBody('a 1\nb{x="1} 2\n', TEXT, 2, "missing closing '\"'"),
    "duplicate label": BadBody('a{x="1",y="2",x="3"} 1\n', TEXT, 1, "label 'x' is given twice"),
    "duplicate last label": BadBody('a{x="1",x="2"} 1\n', TEXT, 1, "label 'x' is given twice"),
    "duplicate first labels": BadBody('a{x="",x="2",y="3"} 1\n', TEXT, 1, "'x' is given twice"),
    "name given twice": BadBody('a{__name__="b"} 1\n', TEXT, 1, "metric name is given twice"),
    "name given twice, later": BadBody(
        'a{x="1",__name__="b"} 1\n', TEXT, 1, "metric name is given twice"
    ),
    "invalid label name": BadBody('a{1x="1"} 1\n', TEXT, 1, "invalid label name"),
    "invalid metric name": BadBody("\nhttp-requests 1\n", TEXT, 2, "invalid character '-'"),
    "missing brace": BadBody('a{x="1" 1\n', TEXT, 1, "expected ',' or '}'"),
    "label without quotes": BadBody("a{x=1} 1\n", TEXT, 1, "must be in double quotes"),
    "extra token": BadBody("a 1 2 3\n", TEXT, 1, "unexpected text '3'"),
    "float timestamp in text": BadBody("a 1 2.5\n", TEXT, 1, "invalid timestamp '2.5'"),
    "timestamp out of range": BadBody("a 1 99999999999999999999\n", TEXT, 1, "out of range"),
    "unknown type": BadBody("# TYPE a countre\na 1\n", TEXT, 1, "unknown metric type 'countre'"),
    "invalid utf-8": BadBody(b'a 1\nb{x="\xff"} 1\n', TEXT, 2, "not valid UTF-8"),
    "no eof": BadBody("a 1\nb 2\n", OPENMETRICS, 2, "no '# EOF' at the end"),
    "data after eof": BadBody("a 1\n# EOF\nb 2\n", OPENMETRICS, 3, "after '# EOF'"),
    "blank line in openmetrics": BadBody("a 1\n\nb 2\n# EOF\n", OPENMETRICS, 2, "blank lines"),
    "plain comment in openmetrics": BadBody(
        "# hello\na 1\n# EOF\n", OPENMETRICS, 1, "allows only '# HELP'"
    ),
    "unit not a suffix": BadBody(
        "# TYPE a gauge\n# UNIT a seconds\na 1\n# EOF\n", OPENMETRICS, 2, "not a suffix"
    ),
    "malformed exemplar": BadBody("a_total 1 # trace\n# EOF\n", OPENMETRICS, 1, "exemplar"),
    "nan timestamp": BadBody("a 1 NaN\n# EOF\n", OPENMETRICS, 1, "invalid timestamp 'NaN'"),
}


@pytest.mark.parametrize("case", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_malformed_body_is_reported_with_its_line(case: BadBody) -> None:
    with pytest.raises(ExpositionError) as caught:
        parse_exposition(case.body, case.content_type)
    error = caught.value
    assert not isinstance(error, ExpositionLimitError)
    assert error.line == case.line
    assert str(error).startswith(f"line {case.line}: ")
    assert case.reason in str(error)


def test_the_error_quotes_the_bad_line_and_shortens_long_ones() -> None:
    long_line = "x{" + "a" * 200 + "} 1"
    with pytest.raises(ExpositionError) as caught:
        parse_exposition(f"ok 1\n{long_line}\n", TEXT)
    message = str(caught.value)
    assert "'x{aaaa" in message and message.endswith("...")
    assert len(message) < 200


def test_errors_are_found_on_cache_hits_too() -> None:
    cache = SeriesCache()
    parse_exposition('a{x="1"} 1\n', TEXT, cache=cache)
    with pytest.raises(ExpositionError, match=r"line 2: invalid value 'oops'"):
        parse_exposition('a{x="1"} 1\na{x="1"} oops\n', TEXT, cache=cache)
    with pytest.raises(ExpositionError, match=r"line 1: invalid timestamp '1\.5'"):
        parse_exposition('a{x="1"} 1 1.5\n', TEXT, cache=cache)


# --- limits --------------------------------------------------------------------------------

LIMIT_BODY = 'a{x="1"} 1\nb{x="1",y="hello"} 2\nc 3\n'


@pytest.mark.parametrize(
    ("limits", "line", "names"),
    [
        (ParseLimits(sample_limit=2), None, "sample_limit 2"),
        (ParseLimits(label_limit=2), 2, "label_limit 2"),
        (ParseLimits(label_name_length_limit=7), 1, "label_name_length_limit 7"),
        (ParseLimits(label_value_length_limit=4), 2, "label_value_length_limit 4"),
    ],
)
def test_each_limit_fails_the_parse_naming_the_limit(
    limits: ParseLimits, line: int | None, names: str
) -> None:
    with pytest.raises(ExpositionLimitError) as caught:
        parse_exposition(LIMIT_BODY, TEXT, limits=limits)
    assert caught.value.line == line
    assert names in str(caught.value)


def test_a_body_exactly_at_every_limit_passes() -> None:
    limits = ParseLimits(
        sample_limit=3, label_limit=3, label_name_length_limit=8, label_value_length_limit=5
    )
    assert len(parse_exposition(LIMIT_BODY, TEXT, limits=limits).values) == 3


def test_value_length_is_counted_in_utf8_bytes_as_prometheus_does() -> None:
    limits = ParseLimits(label_value_length_limit=4)
    assert len(parse_exposition('a{x="abcd"} 1\n', TEXT, limits=limits).values) == 1
    with pytest.raises(ExpositionLimitError, match="5 bytes long"):
        parse_exposition('a{x="abcé"} 1\n', TEXT, limits=limits)


def test_a_cache_filled_without_limits_does_not_bypass_them() -> None:
    cache = SeriesCache()
    parse_exposition(LIMIT_BODY, TEXT, cache=cache)
    with pytest.raises(ExpositionLimitError, match="label_limit 2"):
        parse_exposition(LIMIT_BODY, TEXT, cache=cache, limits=ParseLimits(label_limit=2))


# --- the series cache ----------------------------------------------------------------------


def test_a_warm_cache_gives_the_same_result_and_the_same_label_objects() -> None:
    cache = SeriesCache()
    first = parse_exposition(TEXT_BODY, TEXT, cache=cache)
    second = parse_exposition(TEXT_BODY, TEXT, cache=cache)
    cold = parse_exposition(TEXT_BODY, TEXT)
    assert same_rows(rows(second), rows(cold)) and same_rows(rows(first), rows(cold))
    assert all(a is b for a, b in zip(first.series, second.series, strict=True))


def test_the_cache_follows_changing_values_and_series() -> None:
    cache = SeriesCache()
    parse_exposition('a{x="1"} 1\na{x="2"} 2\n', TEXT, cache=cache)
    changed = parse_exposition('a{x="1"} 10 5000\na{x="3"} 30\n', TEXT, cache=cache)
    assert rows(changed) == [(lbl("a", x="1"), 10.0, 5000), (lbl("a", x="3"), 30.0, None)]


def test_the_cache_is_shared_by_both_formats() -> None:
    cache = SeriesCache()
    parse_exposition('a{x="1"} 1 1000\n', TEXT, cache=cache)
    openmetrics = parse_exposition('a{x="1"} 1 1000\n# EOF\n', OPENMETRICS, cache=cache)
    assert openmetrics.timestamps_ms == [1_000_000]


def test_the_cache_forgets_series_that_are_gone() -> None:
    cache = SeriesCache()
    for scrape in range(6):
        body = "".join(f'churn{{scrape="{scrape}",i="{i}"}} {i}\n' for i in range(1000))
        parsed = parse_exposition(body, TEXT, cache=cache)
        assert len(parsed.values) == 1000
        assert len(cache) <= 2 * 1000 + 256
    # The last scrape's series are all still there, so its next scrape parses nothing anew.
    last = parse_exposition(body, TEXT, cache=cache)
    assert all(labels is cached for labels, cached in zip(last.series, parsed.series, strict=True))


# --- agreement with prometheus_client ------------------------------------------------------

metric_names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,12}", fullmatch=True)
label_names = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,8}", fullmatch=True)
label_values = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from('"\\\n{},= #'),
    max_size=12,
)
help_texts = st.text(st.characters(codec="ascii", exclude_characters="\n\r"), max_size=20)
sample_values = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["NaN", "+Inf", "-Inf", "0", "1e-9", "-0.0"]),
)


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@st.composite
def text_bodies(draw: st.DrawFn) -> str:
    lines: list[str] = []
    for index in range(draw(st.integers(1, 4))):
        # A suffix keeps families apart (prometheus_client groups samples by family name).
        family = f"{draw(metric_names)}_{index}"
        kind = draw(st.sampled_from(["gauge", "untyped", "counter", None]))
        name = f"{family}_total" if kind == "counter" else family
        if draw(st.booleans()):
            lines.append(f"# HELP {name} {draw(help_texts)}")
        if kind is not None:
            lines.append(f"# TYPE {name} {kind}")
        for _ in range(draw(st.integers(1, 4))):
            pairs = draw(st.dictionaries(label_names, label_values, max_size=4))
            inner = ",".join(f'{key}="{escape(value)}"' for key, value in pairs.items())
            if inner and draw(st.booleans()):
                inner += ","
            series = f"{name}{{{inner}}}" if inner or draw(st.booleans()) else name
            separator = draw(st.sampled_from([" ", "  ", "\t"]))
            line = f"{series}{separator}{draw(sample_values)}"
            if draw(st.booleans()):
                line += f" {draw(st.integers(0, 10**13))}"
            lines.append(line)
    return "\n".join(lines) + "\n"


def client_rows(body: str, openmetrics: bool) -> list[Row]:
    families = openmetrics_families(body) if openmetrics else text_families(body)
    result: list[Row] = []
    for family in families:
        for sample in family.samples:
            labels = labels_from_mapping({"__name__": sample.name, **sample.labels})
            stamp = sample.timestamp
            if stamp is not None:
                seconds = float(stamp) if openmetrics else stamp
                stamp = round(seconds * 1000)
            result.append((labels, float(sample.value), stamp))
    return result


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(warm_up=text_bodies(), body=text_bodies())
def test_text_bodies_parse_as_prometheus_client_parses_them(warm_up: str, body: str) -> None:
    cache = SeriesCache()
    parse_exposition(warm_up, TEXT, cache=cache)
    warm = rows(parse_exposition(body.encode(), TEXT, cache=cache))
    cold = rows(parse_exposition(body, TEXT))
    expected = client_rows(body, openmetrics=False)
    assert same_rows(cold, expected), (cold, expected)
    assert same_rows(warm, expected), (warm, expected)


@st.composite
def openmetrics_bodies(draw: st.DrawFn) -> str:
    lines: list[str] = []
    for index in range(draw(st.integers(1, 4))):
        family = f"{draw(metric_names)}_{index}"
        kind = draw(st.sampled_from(["gauge", "unknown", "counter"]))
        lines.append(f"# TYPE {family} {kind}")
        seen: set[Labels] = set()
        for _ in range(draw(st.integers(1, 4))):
            pairs = draw(st.dictionaries(label_names, label_values, max_size=4))
            key = labels_from_mapping(pairs)
            if key in seen:  # OpenMetrics forbids repeating a series in a family
                continue
            seen.add(key)
            inner = ",".join(f'{key}="{escape(value)}"' for key, value in pairs.items())
            name = f"{family}_total" if kind == "counter" else family
            series = f"{name}{{{inner}}}" if inner else name
            value = draw(sample_values)
            if kind == "counter" and (value.startswith("-") or value == "NaN"):
                value = "0"  # counters may not go negative in OpenMetrics
            stamp = ""
            if draw(st.booleans()):
                stamp = f" {draw(st.integers(0, 10**10))}.{draw(st.integers(0, 999)):03d}"
            exemplar = (
                ' # {trace_id="abc"} 1.5' if kind == "counter" and draw(st.booleans()) else ""
            )
            lines.append(f"{series} {value}{stamp}{exemplar}")
            if kind == "counter" and draw(st.booleans()):
                created = f"{family}_created{{{inner}}}" if inner else f"{family}_created"
                lines.append(f"{created} 1.7e9{stamp}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=openmetrics_bodies())
def test_openmetrics_bodies_parse_as_prometheus_client_parses_them(body: str) -> None:
    parsed = rows(parse_exposition(body, OPENMETRICS))
    expected = [
        row
        for row in client_rows(body, openmetrics=True)
        if not dict(row[0])["__name__"].endswith("_created")  # dropped, as Prometheus does
    ]
    assert same_rows(parsed, expected), (parsed, expected)
