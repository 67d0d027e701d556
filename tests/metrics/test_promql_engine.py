"""opsbook's PromQL engine through its public interface, one family of functions at a time.

The conformance files (test_promql_conformance.py) cover Prometheus's own cases; these pin the
behaviour users lean on most, the limits, and the errors, with data small enough to check by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from opsbook.metrics.memory import MemoryStore
from opsbook.metrics.model import STALE_NAN, Labels, labels_from_mapping
from opsbook.metrics.promql import Engine, EngineOptions, parse_series_selector
from opsbook.metrics.query import (
    BadQueryRequest,
    Matrix,
    QueryError,
    QuerySyntaxError,
    QueryTimeout,
    QueryTooExpensive,
    Scalar,
    String,
    Vector,
)

MIN = 60_000


def series(name: str, **labels: str) -> Labels:
    return labels_from_mapping({"__name__": name, **labels})


def load(store: MemoryStore, labels: Labels, values: list[float], step_ms: int = 15_000) -> None:
    store.append([labels] * len(values), [i * step_ms for i in range(len(values))], values)


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    # Two routes, two instances; counters growing 1, 2, 3, 4 per 15 s over 20 minutes.
    for i, (route, instance) in enumerate(
        [("/a", "1"), ("/a", "2"), ("/b", "1"), ("/b", "2")], start=1
    ):
        labels = series("http_requests_total", route=route, instance=instance)
        load(store, labels, [float(i * k) for k in range(81)])
    for le, count in (("0.1", 50.0), ("0.5", 80.0), ("1", 95.0), ("+Inf", 100.0)):
        load(store, series("latency_bucket", le=le), [count * k for k in range(81)])
    load(store, series("temperature", room="x"), [20, 21, 19, 25, 22, 22, 18, 30])
    return store


def instant(store: MemoryStore, expr: str, t_ms: int, **options: object) -> dict[Labels, float]:
    result = Engine(store, EngineOptions(**options)).instant_query(expr, t_ms)  # type: ignore[arg-type]
    assert isinstance(result.value, Vector), result.value
    return {s.labels: s.value for s in result.value.samples}


def one(store: MemoryStore, expr: str, t_ms: int) -> float:
    values = instant(store, expr, t_ms)
    assert len(values) == 1, values
    return next(iter(values.values()))


# --- selectors, lookback, staleness, offset, @ ---------------------------------------------


def test_instant_selector_takes_the_latest_sample_within_the_lookback(store: MemoryStore) -> None:
    assert one(store, 'http_requests_total{route="/a",instance="1"}', 20 * MIN + 7_000) == 80.0
    # Five minutes after the last sample (t=20m) the series is gone: the lookback is left-open.
    assert instant(store, "http_requests_total", 25 * MIN) == {}
    assert len(instant(store, "http_requests_total", 25 * MIN - 1)) == 4


def test_stale_marker_ends_a_series_at_once() -> None:
    store = MemoryStore()
    labels = series("up", job="x")
    store.append([labels] * 3, [0, 15_000, 30_000], [1.0, 1.0, STALE_NAN])
    assert instant(store, "up", 20_000) == {labels: 1.0}
    assert instant(store, "up", 31_000) == {}
    # A stale marker is not a sample to range functions either.
    assert instant(store, "count_over_time(up[1m])", 31_000) == {(("job", "x"),): 2.0}


def test_matchers_of_every_kind(store: MemoryStore) -> None:
    assert len(instant(store, 'http_requests_total{route="/a"}', MIN)) == 2
    assert len(instant(store, 'http_requests_total{route!="/a"}', MIN)) == 2
    assert len(instant(store, 'http_requests_total{route=~"/(a|b)",instance!~"2"}', MIN)) == 2
    assert len(instant(store, '{__name__=~"http_.*", instance="2"}', MIN)) == 2
    # An absent label matches the empty string.
    assert len(instant(store, 'temperature{missing=""}', MIN)) == 1


def test_offset_and_at_modifiers(store: MemoryStore) -> None:
    selector = 'http_requests_total{route="/a",instance="1"}'
    assert one(store, f"{selector} offset 5m", 10 * MIN) == 20.0
    assert one(store, f"{selector} @ 300", 20 * MIN) == 20.0
    assert one(store, f"{selector} @ 600 offset 5m", 0) == 20.0
    result = Engine(store).range_query(f"{selector} @ end()", 0, 2 * MIN, MIN)
    assert isinstance(result.value, Matrix)
    assert result.value.series[0].values.tolist() == [8.0, 8.0, 8.0]


# --- range functions --------------------------------------------------------------------------


def test_rate_increase_and_delta_extrapolate_like_prometheus(store: MemoryStore) -> None:
    selector = 'http_requests_total{route="/a",instance="1"}[5m]'
    # 1 per 15 s: the rate is 1/15 per second, the increase over 5 m is 20.
    assert one(store, f"rate({selector})", 10 * MIN) == pytest.approx(1 / 15)
    assert one(store, f"increase({selector})", 10 * MIN) == pytest.approx(20.0)
    assert one(store, f"delta({selector})", 10 * MIN) == pytest.approx(20.0)
    assert one(store, f"irate({selector})", 10 * MIN) == pytest.approx(1 / 15)
    assert one(store, f"idelta({selector})", 10 * MIN) == pytest.approx(1.0)


def test_rate_handles_counter_resets() -> None:
    store = MemoryStore()
    labels = series("jobs_total")
    load(store, labels, [0, 10, 20, 5, 15, 25])  # reset after 20
    # Samples 0..25 with 20 lost to the reset; the counter started at 0, so no extrapolation.
    assert one(store, "increase(jobs_total[90s])", 75_000) == pytest.approx(45.0)
    assert one(store, "resets(jobs_total[2m])", 75_000) == 1.0
    assert one(store, "changes(jobs_total[2m])", 75_000) == 5.0


def test_rate_of_a_gauge_name_carries_an_info() -> None:
    store = MemoryStore()
    load(store, series("queue_depth"), [1, 2, 3, 4])
    result = Engine(store).instant_query("rate(queue_depth[1m])", 45_000)
    assert any("might not be a counter" in info for info in result.infos)


def test_over_time_family(store: MemoryStore) -> None:
    # temperature: 20 21 19 25 22 22 18 30 at 0, 15 s, ..., 105 s
    at = 105_000
    window = "temperature[2m]"  # (-15 s, 105 s]: all eight samples
    assert one(store, f"avg_over_time({window})", at) == pytest.approx(177 / 8)
    assert one(store, f"sum_over_time({window})", at) == 177.0
    assert one(store, f"min_over_time({window})", at) == 18.0
    assert one(store, f"max_over_time({window})", at) == 30.0
    assert one(store, f"count_over_time({window})", at) == 8.0
    assert one(store, f"last_over_time({window})", at) == 30.0
    assert one(store, f"present_over_time({window})", at) == 1.0
    assert one(store, f"quantile_over_time(0.5, {window})", at) == 21.5
    values = np.array([20, 21, 19, 25, 22, 22, 18, 30], dtype=float)
    assert one(store, f"stddev_over_time({window})", at) == pytest.approx(values.std())
    assert one(store, f"stdvar_over_time({window})", at) == pytest.approx(values.var())
    # The window is open on the left: at 120 s the sample at 0 s is out.
    assert one(store, f"count_over_time({window})", 120_000) == 7.0


def test_deriv_and_predict_linear(store: MemoryStore) -> None:
    selector = 'http_requests_total{route="/a",instance="1"}[5m]'
    assert one(store, f"deriv({selector})", 10 * MIN) == pytest.approx(1 / 15)
    # 40 at 10 m, growing 4 per minute: 40 + 4 * 60 an hour later.
    assert one(store, f"predict_linear({selector}, 3600)", 10 * MIN) == pytest.approx(280.0)


def test_absent_and_absent_over_time(store: MemoryStore) -> None:
    assert instant(store, 'absent(nothing{job="x"})', MIN) == {(("job", "x"),): 1.0}
    assert instant(store, "absent(temperature)", MIN) == {}
    assert instant(store, 'absent_over_time(nothing{job="x"}[5m])', MIN) == {(("job", "x"),): 1.0}
    assert instant(store, "absent_over_time(temperature[5m])", MIN) == {}


def test_subquery(store: MemoryStore) -> None:
    expr = 'max_over_time(rate(http_requests_total{route="/b",instance="2"}[1m])[5m:1m])'
    assert one(store, expr, 10 * MIN) == pytest.approx(4 / 15)


# --- instant-vector functions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("abs(vector(-2.5))", 2.5),
        ("ceil(vector(1.2))", 2.0),
        ("floor(vector(1.8))", 1.0),
        ("round(vector(2.5))", 3.0),
        ("round(vector(2.26), 0.1)", 2.3),
        ("sqrt(vector(16))", 4.0),
        ("exp(vector(0))", 1.0),
        ("ln(vector(1))", 0.0),
        ("log2(vector(8))", 3.0),
        ("log10(vector(1000))", 3.0),
        ("sgn(vector(-3))", -1.0),
        ("clamp(vector(5), 0, 3)", 3.0),
        ("clamp_min(vector(-5), 0)", 0.0),
        ("clamp_max(vector(5), 1)", 1.0),
        ("scalar(vector(7)) + 1", 8.0),
        ("year(vector(1700000000))", 2023.0),
        ("month(vector(1700000000))", 11.0),
        ("day_of_month(vector(1700000000))", 14.0),
        ("day_of_week(vector(1700000000))", 2.0),
        ("day_of_year(vector(1700000000))", 318.0),
        ("days_in_month(vector(1700000000))", 30.0),
        ("hour(vector(1700000000))", 22.0),
        ("minute(vector(1700000000))", 13.0),
    ],
)
def test_math_and_date_functions(store: MemoryStore, expr: str, expected: float) -> None:
    result = Engine(store).instant_query(expr, MIN)
    value = result.value
    got = value.value if isinstance(value, Scalar) else value.samples[0].value  # type: ignore[union-attr]
    assert got == pytest.approx(expected)


def test_time_timestamp_and_scalar_literals(store: MemoryStore) -> None:
    result = Engine(store).instant_query("time()", 90_000)
    assert result.value == Scalar(90_000, 90.0)
    assert one(store, "timestamp(temperature)", 100_000) == 90.0
    assert Engine(store).instant_query('"text"', 0).value == String(0, "text")


def test_label_replace_and_label_join(store: MemoryStore) -> None:
    replaced = instant(
        store, 'label_replace(temperature, "floor", "level-$1", "room", "(.*)")', MIN
    )
    assert list(replaced) == [series("temperature", room="x", floor="level-x")]
    joined = instant(store, 'label_join(temperature, "both", "/", "__name__", "room")', MIN)
    assert list(joined) == [series("temperature", room="x", both="temperature/x")]
    with pytest.raises(QueryError, match="same labelset"):
        instant(store, 'label_replace(http_requests_total, "route", "", "", "")', MIN)


def test_sort_orders_an_instant_result(store: MemoryStore) -> None:
    result = Engine(store).instant_query("sort_desc(http_requests_total)", MIN)
    assert isinstance(result.value, Vector)
    assert [s.value for s in result.value.samples] == [16.0, 12.0, 8.0, 4.0]


def test_histogram_quantile_over_classic_buckets(store: MemoryStore) -> None:
    # Cumulative 50/80/95/100 of 100: the median is in the first bucket, p90 in the third.
    expr = "histogram_quantile({q}, rate(latency_bucket[5m]))"
    assert one(store, expr.format(q=0.5), 10 * MIN) == pytest.approx(0.1)
    assert one(store, expr.format(q=0.9), 10 * MIN) == pytest.approx(0.5 + 0.5 * 10 / 15)
    assert one(store, expr.format(q=0.99), 10 * MIN) == pytest.approx(1.0)


# --- aggregations -----------------------------------------------------------------------------


def test_aggregations(store: MemoryStore) -> None:
    at = MIN  # values 4, 8, 12, 16
    assert one(store, "sum(http_requests_total)", at) == 40.0
    assert one(store, "avg(http_requests_total)", at) == 10.0
    assert one(store, "min(http_requests_total)", at) == 4.0
    assert one(store, "max(http_requests_total)", at) == 16.0
    assert one(store, "count(http_requests_total)", at) == 4.0
    assert one(store, "group(http_requests_total)", at) == 1.0
    assert one(store, "stddev(http_requests_total)", at) == pytest.approx(np.std([4, 8, 12, 16]))
    assert one(store, "stdvar(http_requests_total)", at) == pytest.approx(np.var([4, 8, 12, 16]))
    assert one(store, "quantile(0.5, http_requests_total)", at) == 10.0
    by_route = instant(store, "sum by (route) (http_requests_total)", at)
    assert by_route == {(("route", "/a"),): 12.0, (("route", "/b"),): 28.0}
    without = instant(store, "sum without (instance) (http_requests_total)", at)
    assert without == by_route
    top = instant(store, "topk(2, http_requests_total)", at)
    assert sorted(top.values()) == [12.0, 16.0]
    assert "__name__" in dict(next(iter(top)))  # topk keeps the series as they are
    bottom = instant(store, "bottomk by (route) (1, http_requests_total)", at)
    assert sorted(bottom.values()) == [4.0, 12.0]
    counted = instant(store, 'count_values("value", vector(3) or vector(4))', at)
    assert counted == {(("value", "3"),): 1.0}


# --- binary operators -------------------------------------------------------------------------


def test_arithmetic_and_comparisons(store: MemoryStore) -> None:
    at = MIN
    doubled = instant(store, 'http_requests_total{route="/a"} * 2', at)
    assert sorted(doubled.values()) == [8.0, 16.0]
    assert all("__name__" not in dict(labels) for labels in doubled)
    filtered = instant(store, "http_requests_total > 10", at)
    assert sorted(filtered.values()) == [12.0, 16.0]
    as_bool = instant(store, "http_requests_total > bool 10", at)
    assert sorted(as_bool.values()) == [0.0, 0.0, 1.0, 1.0]
    assert one(store, "2 ^ 3 % 5 + vector(0)", at) == 3.0


def test_vector_matching(store: MemoryStore) -> None:
    at = MIN
    ratio = instant(
        store,
        'http_requests_total{instance="1"} / ignoring(instance) http_requests_total{instance="2"}',
        at,
    )
    assert sorted(ratio.values()) == [pytest.approx(0.5), pytest.approx(0.75)]
    share = instant(
        store,
        "http_requests_total / on(route) group_left sum by (route) (http_requests_total)",
        at,
    )
    assert len(share) == 4 and sum(share.values()) == pytest.approx(2.0)
    with pytest.raises(QueryError, match="many-to-many matching not allowed"):
        instant(store, "http_requests_total / on(route) http_requests_total", at)


def test_set_operators(store: MemoryStore) -> None:
    at = MIN
    both = instant(store, 'http_requests_total and http_requests_total{route="/a"}', at)
    assert len(both) == 2
    either = instant(store, 'http_requests_total{route="/a"} or temperature', at)
    assert len(either) == 3
    unless = instant(store, 'http_requests_total unless on(route) temperature{room="x"}', at)
    assert len(unless) == 4
    unless_a = instant(store, 'http_requests_total unless http_requests_total{route="/a"}', at)
    assert len(unless_a) == 2


# --- range queries, errors and limits ---------------------------------------------------------


def test_range_query_returns_a_matrix_sorted_by_labels(store: MemoryStore) -> None:
    result = Engine(store).range_query(
        "sum by (route) (rate(http_requests_total[1m]))", 5 * MIN, 10 * MIN, MIN
    )
    assert isinstance(result.value, Matrix)
    assert [s.labels for s in result.value.series] == [(("route", "/a"),), (("route", "/b"),)]
    assert result.value.series[0].timestamps.tolist() == list(range(5 * MIN, 10 * MIN + 1, MIN))
    assert result.value.series[0].values == pytest.approx([3 / 15] * 6)


def test_syntax_errors_say_where(store: MemoryStore) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        Engine(store).instant_query("sum(rate(foo[5m])", 0)
    assert caught.value.message.startswith("1:")
    assert "parse error" in caught.value.message
    with pytest.raises(QuerySyntaxError) as caught:
        Engine(store).instant_query("foo bar", 0)
    assert caught.value.message.startswith("1:5: parse error")
    assert caught.value.position == 4


def test_range_query_rejects_bad_steps_and_types(store: MemoryStore) -> None:
    engine = Engine(store)
    with pytest.raises(BadQueryRequest, match="zero or negative"):
        engine.range_query("up", 0, MIN, 0)
    with pytest.raises(BadQueryRequest, match="11,000 points"):
        engine.range_query("up", 0, 12_000 * MIN, MIN)
    with pytest.raises(BadQueryRequest, match="range vector"):
        engine.range_query("temperature[5m]", 0, MIN, MIN)


def test_max_samples_stops_an_expensive_query(store: MemoryStore) -> None:
    engine = Engine(store, EngineOptions(max_samples=100))
    with pytest.raises(QueryTooExpensive, match="too many samples"):
        engine.instant_query("sum_over_time(http_requests_total[20m])", 20 * MIN)
    assert engine.instant_query("temperature", MIN).value is not None


def test_timeout_stops_a_slow_query(store: MemoryStore) -> None:
    engine = Engine(store, EngineOptions(timeout_s=0.0))
    with pytest.raises(QueryTimeout, match="timed out"):
        engine.instant_query("sum(http_requests_total)", MIN)


def test_series_selector_parsing() -> None:
    matchers = parse_series_selector('up{job="api",env=~"prod|stage"}')
    assert [str(m) for m in matchers] == ['__name__="up"', 'job="api"', 'env=~"prod|stage"']
    with pytest.raises(BadQueryRequest, match="vector selector"):
        parse_series_selector("sum(up)")


def test_nan_is_a_value_not_an_absence() -> None:
    store = MemoryStore()
    load(store, series("ratio"), [math.nan, 1.0])
    result = Engine(store).instant_query("ratio", 0)
    assert isinstance(result.value, Vector)
    assert math.isnan(result.value.samples[0].value)
