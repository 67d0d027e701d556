"""The two backends agree: opsbook's engine and a real Prometheus answer the same queries alike.

One OpenMetrics file is loaded into a real Prometheus (Debian's 2.42, through
`promtool tsdb create-blocks-from openmetrics`) and into opsbook (`import_openmetrics` into the
embedded store). Queries then go:

- to Prometheus through :class:`PrometheusBackend` (the "prometheus" backend), and
- to opsbook's query API, served by uvicorn, through the same :class:`PrometheusBackend` — so
  the HTTP API, the JSON encoding and the engine are all on the path, as Grafana would use them.

Prometheus 2.42 closes range windows on the left and includes a sample exactly ``lookback`` old;
opsbook follows 3.x, which does neither. Samples therefore sit 7.3 s past every 15 s boundary and
queries run on whole minutes (subqueries 30 s off), so no sample ever lies on a window edge.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from fastapi import FastAPI

from opsbook.metrics.backends import EmbeddedBackend, PrometheusBackend
from opsbook.metrics.embedded import EmbeddedStore
from opsbook.metrics.importer import import_openmetrics
from opsbook.metrics.model import Labels, format_labels
from opsbook.metrics.query import Matrix, QueryError, QueryValue, Scalar, Vector
from opsbook.metrics.views import query_api_router
from tests.conftest import require_tool
from tests.metrics.http_server import serve_in_thread
from tests.metrics.prometheus_server import create_blocks, running_prometheus

STEP_S = 15
OFFSET_MS = 7_300
HOURS = 4
ROUTES = ["/a", "/b", "/c", "/d", "/e"]
BUCKETS = ["0.05", "0.1", "0.25", "0.5", "1", "+Inf"]


def _openmetrics(t0_s: int) -> str:
    """About 60 series over four hours: counters (one reset), histogram buckets, gauges."""
    rng = np.random.default_rng(42)
    steps = HOURS * 3600 // STEP_S
    stamps = [f"{t0_s + k * STEP_S + OFFSET_MS / 1000:.3f}" for k in range(steps)]
    out: list[str] = ["# TYPE http_requests counter\n"]
    for instance in ("a:80", "b:80"):
        for route in ROUTES:
            for status, rate in (("200", 4.0), ("500", 0.3)):
                values = np.cumsum(rng.poisson(rate * STEP_S, steps)).astype(float)
                if route == "/c" and status == "200" and instance == "a:80":
                    values[steps // 2 :] -= values[steps // 2 - 1] - 3  # a counter reset
                labels = f'instance="{instance}",route="{route}",status="{status}"'
                out.extend(
                    f"http_requests_total{{{labels}}} {v:.17g} {t}\n"
                    for v, t in zip(values, stamps, strict=True)
                )
    out.append("# TYPE http_request_duration_seconds_bucket unknown\n")
    for route in ROUTES[:3]:
        count = np.cumsum(rng.poisson(20, steps)).astype(float)
        shares = [*np.sort(rng.uniform(0.1, 0.95, len(BUCKETS) - 1)), 1.0]
        for le, share in zip(BUCKETS, shares, strict=True):
            labels = f'le="{le}",route="{route}"'
            out.extend(
                f"http_request_duration_seconds_bucket{{{labels}}} {math.floor(c * share)} {t}\n"
                for c, t in zip(count, stamps, strict=True)
            )
    out.append("# TYPE memory_usage_bytes gauge\n")
    for index in range(4):
        walk = 1e9 + np.cumsum(rng.normal(0, 1e6, steps))
        # One series vanishes 10 minutes before the query time: the lookback must end it alike.
        last = steps if index else (HOURS - 1) * 3600 // STEP_S - 40
        labels = f'instance="m{index}:9100",job="node"'
        out.extend(
            f"memory_usage_bytes{{{labels}}} {v:.17g} {t}\n"
            for v, t in zip(walk[:last], stamps[:last], strict=True)
        )
    out.append("# EOF\n")
    return "".join(out)


INSTANT_QUERIES = [
    "http_requests_total",
    'http_requests_total{route=~"/[ab]",status!="500"}',
    "rate(http_requests_total[5m])",
    "sum by (route) (rate(http_requests_total[5m]))",
    'sum(rate(http_requests_total{status="500"}[1h])) / sum(rate(http_requests_total[1h]))',
    "increase(http_requests_total[10m])",
    "irate(http_requests_total[5m])",
    "delta(memory_usage_bytes[15m])",
    "idelta(memory_usage_bytes[5m])",
    "deriv(memory_usage_bytes[30m])",
    "predict_linear(memory_usage_bytes[30m], 3600)",
    "resets(http_requests_total[3h])",
    "changes(memory_usage_bytes[10m])",
    "avg_over_time(memory_usage_bytes[20m])",
    "min_over_time(memory_usage_bytes[20m])",
    "max_over_time(memory_usage_bytes[20m])",
    "sum_over_time(memory_usage_bytes[20m])",
    "count_over_time(http_requests_total[1h])",
    "stddev_over_time(memory_usage_bytes[20m])",
    "stdvar_over_time(memory_usage_bytes[20m])",
    "quantile_over_time(0.9, memory_usage_bytes[1h])",
    "last_over_time(memory_usage_bytes[20m])",
    "present_over_time(memory_usage_bytes[20m])",
    "absent_over_time(nonexistent_metric[5m])",
    "absent(nonexistent_metric)",
    "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.5, rate(http_request_duration_seconds_bucket[10m]))",
    "topk(3, rate(http_requests_total[5m]))",
    "bottomk(2, memory_usage_bytes)",
    "quantile(0.75, rate(http_requests_total[5m]))",
    'count_values("status", count by (status) (http_requests_total))',
    "stddev by (instance) (rate(http_requests_total[5m]))",
    "stdvar without (route) (rate(http_requests_total[5m]))",
    "avg without (instance, status) (rate(http_requests_total[5m]))",
    "min by (route) (http_requests_total)",
    "max by (status) (http_requests_total)",
    "count(http_requests_total)",
    "group by (instance) (http_requests_total)",
    'rate(http_requests_total{status="500"}[5m]) / ignoring(status) '
    'rate(http_requests_total{status="200"}[5m])',
    "http_requests_total / on(instance) group_left() sum by (instance) (http_requests_total)",
    "http_requests_total > bool 5000",
    'http_requests_total{status="500"} > 100',
    "memory_usage_bytes and on(instance) memory_usage_bytes > 1e9",
    'http_requests_total{route="/a"} or http_requests_total{route="/b"}',
    'http_requests_total unless http_requests_total{status="500"}',
    "memory_usage_bytes offset 1h",
    "rate(http_requests_total[5m] offset 30m)",
    "-memory_usage_bytes % 1000 + 2 ^ 3",
    "abs(-memory_usage_bytes) / 1e6",
    "ceil(rate(http_requests_total[5m]))",
    "floor(rate(http_requests_total[5m]))",
    "round(rate(http_requests_total[5m]), 0.1)",
    "clamp(rate(http_requests_total[5m]), 0.5, 2)",
    "clamp_min(rate(http_requests_total[5m]), 1)",
    "clamp_max(rate(http_requests_total[5m]), 1)",
    "sqrt(memory_usage_bytes)",
    "exp(rate(http_requests_total[5m]) / 10)",
    "ln(memory_usage_bytes)",
    "log2(memory_usage_bytes)",
    "log10(memory_usage_bytes)",
    "sgn(deriv(memory_usage_bytes[10m]))",
    "timestamp(memory_usage_bytes)",
    "hour(timestamp(memory_usage_bytes))",
    "minute()",
    "day_of_week()",
    "days_in_month()",
    "time()",
    "vector(1) + scalar(count(http_requests_total))",
    "scalar(sum(memory_usage_bytes))",
    'label_replace(memory_usage_bytes, "host", "$1", "instance", "(.*):.*")',
    'label_join(memory_usage_bytes, "pair", "/", "job", "instance")',
    "sort(rate(http_requests_total[5m]))",
    "sort_desc(memory_usage_bytes)",
]

SUBQUERIES = [
    "max_over_time(rate(http_requests_total[5m])[30m:1m])",
    "avg_over_time(sum(memory_usage_bytes)[1h:5m])",
    "deriv(avg(memory_usage_bytes)[20m:])",
]

RANGE_QUERIES = [
    "sum by (route) (rate(http_requests_total[5m]))",
    "memory_usage_bytes",
    "histogram_quantile(0.9, sum by (le, route) (rate(http_request_duration_seconds_bucket[5m])))",
    "topk(2, memory_usage_bytes)",
    'sum(rate(http_requests_total{status="500"}[5m])) / sum(rate(http_requests_total[5m]))',
    "time() - timestamp(memory_usage_bytes)",
]


@dataclass
class Fixture:
    query_time_ms: int
    opsbook: PrometheusBackend
    embedded: EmbeddedBackend
    prometheus: PrometheusBackend
    loop: asyncio.AbstractEventLoop

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    require_tool("promtool", "prometheus")
    require_tool("prometheus", "prometheus")
    tmp = tmp_path_factory.mktemp("agreement")
    hour = int(time.time()) // 3600 * 3600
    t0_s = hour - 6 * 3600
    data = tmp / "data.om"
    data.write_text(_openmetrics(t0_s))
    create_blocks(data, tmp / "prometheus")
    store = EmbeddedStore.open(tmp / "metrics.duckdb", retention=None)
    import_openmetrics(data, store)
    store.flush()
    embedded = EmbeddedBackend(store)
    app = FastAPI()
    app.include_router(query_api_router(embedded))
    loop = asyncio.new_event_loop()
    with serve_in_thread(app) as opsbook_url, running_prometheus(tmp / "prometheus") as prom_url:
        fixture = Fixture(
            query_time_ms=(t0_s + 3 * 3600) * 1000,
            opsbook=PrometheusBackend(opsbook_url),
            embedded=embedded,
            prometheus=PrometheusBackend(prom_url),
            loop=loop,
        )
        yield fixture
        fixture.run(fixture.opsbook.close())
        fixture.run(fixture.prometheus.close())
    store.close()
    loop.close()


def _normal(value: QueryValue, ordered: bool) -> object:
    if isinstance(value, Scalar):
        return ("scalar", value.t_ms, value.value)
    if isinstance(value, Vector):
        rows = [(s.labels, s.t_ms, s.value) for s in value.samples]
        return ("vector", rows if ordered else sorted(rows, key=lambda r: r[0]))
    assert isinstance(value, Matrix)
    return (
        "matrix",
        sorted(
            ((s.labels, s.timestamps.tolist(), s.values.tolist()) for s in value.series),
            key=lambda r: r[0],
        ),
    )


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def assert_same(expr: str, ours: QueryValue, theirs: QueryValue) -> None:
    ordered = expr.startswith(("sort", "topk", "bottomk"))
    a, b = _normal(ours, ordered), _normal(theirs, ordered)
    assert a[0] == b[0], f"{expr}: result type {a[0]} vs Prometheus {b[0]}"
    if a[0] == "scalar":
        assert a[1] == b[1] and _close(a[2], b[2]), f"{expr}: {a} vs Prometheus {b}"  # type: ignore[index,arg-type]
        return
    rows_a, rows_b = a[1], b[1]  # type: ignore[index]
    names_a = [format_labels(r[0]) for r in rows_a]
    names_b = [format_labels(r[0]) for r in rows_b]
    if a[0] == "vector" and ordered:
        # The values must come in the same order; among (nearly) equal values the order is
        # undefined (topk's output order is undefined altogether): then the set is what counts.
        values_a, values_b = [r[2] for r in rows_a], [r[2] for r in rows_b]
        if not expr.startswith(("topk", "bottomk")):
            assert len(values_a) == len(values_b), f"{expr}: {len(values_a)} vs {len(values_b)}"
            assert all(_close(x, y) for x, y in zip(values_a, values_b, strict=True)), (
                f"{expr}: values in another order\nopsbook:    {values_a}\nPrometheus: {values_b}"
            )
        names_a, names_b = sorted(names_a), sorted(names_b)
        rows_a, rows_b = sorted(rows_a), sorted(rows_b)
    assert names_a == names_b, (
        f"{expr}: series differ\nopsbook:    {names_a}\nPrometheus: {names_b}"
    )
    for row_a, row_b in zip(rows_a, rows_b, strict=True):
        if a[0] == "vector":
            assert row_a[1] == row_b[1], f"{expr} {format_labels(row_a[0])}: timestamp differs"
            assert _close(row_a[2], row_b[2]), (
                f"{expr} {format_labels(row_a[0])}: {row_a[2]!r} vs Prometheus {row_b[2]!r}"
            )
        else:
            assert row_a[1] == row_b[1], f"{expr} {format_labels(row_a[0])}: timestamps differ"
            bad = [
                (t, x, y)
                for t, x, y in zip(row_a[1], row_a[2], row_b[2], strict=True)
                if not _close(x, y)
            ]
            assert not bad, f"{expr} {format_labels(row_a[0])}: (t, ours, theirs) {bad[:3]}"


@pytest.mark.parametrize("expr", INSTANT_QUERIES)
def test_instant_queries_agree(backends: Fixture, expr: str) -> None:
    at = backends.query_time_ms
    theirs = backends.run(backends.prometheus.instant_query(expr, at))
    ours = backends.run(backends.opsbook.instant_query(expr, at))
    assert_same(expr, ours.value, theirs.value)


@pytest.mark.parametrize("expr", SUBQUERIES)
def test_subqueries_agree(backends: Fixture, expr: str) -> None:
    at = backends.query_time_ms + 30_000
    theirs = backends.run(backends.prometheus.instant_query(expr, at))
    ours = backends.run(backends.opsbook.instant_query(expr, at))
    assert_same(expr, ours.value, theirs.value)


@pytest.mark.parametrize("expr", RANGE_QUERIES)
def test_range_queries_agree(backends: Fixture, expr: str) -> None:
    end = backends.query_time_ms
    start = end - 3600_000
    theirs = backends.run(backends.prometheus.range_query(expr, start, end, 60_000))
    ours = backends.run(backends.opsbook.range_query(expr, start, end, 60_000))
    assert_same(expr, ours.value, theirs.value)


def test_the_embedded_backend_agrees_without_http(backends: Fixture) -> None:
    expr = "sum by (route) (rate(http_requests_total[5m]))"
    at = backends.query_time_ms
    theirs = backends.run(backends.prometheus.instant_query(expr, at))
    ours = backends.run(backends.embedded.instant_query(expr, at))
    assert_same(expr, ours.value, theirs.value)


def test_series_and_labels_agree(backends: Fixture) -> None:
    end = backends.query_time_ms
    start = end - 3600_000
    for selectors in (
        ['{__name__=~"http.*"}'],
        ["memory_usage_bytes", 'http_requests_total{route="/a"}'],
    ):
        ours: list[Labels] = backends.run(backends.opsbook.series(selectors, start, end))
        theirs: list[Labels] = backends.run(backends.prometheus.series(selectors, start, end))
        assert ours == theirs
    for selectors in ([], ["memory_usage_bytes"]):
        names = backends.run(backends.opsbook.label_names(selectors, start, end))
        assert names == backends.run(backends.prometheus.label_names(selectors, start, end))
    for name in ("route", "instance", "__name__"):
        values = backends.run(backends.opsbook.label_values(name, [], start, end))
        assert values == backends.run(backends.prometheus.label_values(name, [], start, end))


@pytest.mark.parametrize(
    ("expr", "kind"),
    [
        ("sum(rate(http_requests_total[5m])", "bad_data"),
        ("rate(memory_usage_bytes)", "bad_data"),
        ("http_requests_total + on(route) http_requests_total", "execution"),
    ],
)
def test_errors_agree(backends: Fixture, expr: str, kind: str) -> None:
    at = backends.query_time_ms
    errors: list[QueryError] = []
    for backend in (backends.prometheus, backends.opsbook):
        with pytest.raises(QueryError) as caught:
            backends.run(backend.instant_query(expr, at))
        errors.append(caught.value)
    assert [e.kind for e in errors] == [kind, kind]
