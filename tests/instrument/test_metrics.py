from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import opsbook.instrument
from opsbook.instrument import DEFAULT_BUCKETS, UNMATCHED_ROUTE
from tests.instrument.conftest import build_app, sample


async def test_requests_are_counted_by_route_template(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    for user in (1, 2, 3):
        await client.get(f"/users/{user}")
    await client.get("/teapot")
    assert (
        sample(
            registry, "http_requests_total", method="GET", route="/users/{user_id}", status="200"
        )
        == 3
    )
    assert sample(registry, "http_requests_total", method="GET", route="/teapot", status="418") == 1
    assert (
        sample(
            registry, "http_request_duration_seconds_count", method="GET", route="/users/{user_id}"
        )
        == 3
    )
    # No series for a concrete path: cardinality is bounded by the routes.
    assert (
        sample(registry, "http_requests_total", method="GET", route="/users/1", status="200") == 0
    )


async def test_unmatched_paths_share_one_label_value(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    for path in ("/wp-admin", "/.env", "/a/b/c", "/users/1/../../etc/passwd", "/xyz?q=1"):
        await client.get(path)
    assert (
        sample(registry, "http_requests_total", method="GET", route=UNMATCHED_ROUTE, status="404")
        == 5
    )
    text = (await client.get("/metrics")).text
    assert "wp-admin" not in text and ".env" not in text


async def test_mounted_routes_report_their_full_template(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    response = await client.get("/v2/items/abc")
    assert response.text == "mounted abc"
    await client.get("/v2/items/def")
    assert (
        sample(
            registry, "http_requests_total", method="GET", route="/v2/items/{item}", status="200"
        )
        == 2
    )


async def test_unhandled_exceptions_are_counted_by_type(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    await client.get("/boom")
    await client.get("/boom")
    assert sample(registry, "http_exceptions_total", route="/boom", type="RuntimeError") == 2
    assert sample(registry, "http_requests_total", method="GET", route="/boom", status="500") == 2
    # HTTPException is a handled response, not an exception escaping the app.
    await client.get("/teapot")
    assert sample(registry, "http_exceptions_total", route="/teapot", type="HTTPException") == 0


async def test_duration_histogram_has_slo_thresholds_as_buckets(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    for bound in (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0):
        assert bound in DEFAULT_BUCKETS
    assert DEFAULT_BUCKETS[0] == 0.005 and DEFAULT_BUCKETS[-1] == 10.0
    await client.get("/slow")  # sleeps 50 ms
    labels = {"method": "GET", "route": "/slow"}
    assert sample(registry, "http_request_duration_seconds_bucket", **labels, le="0.025") == 0
    assert sample(registry, "http_request_duration_seconds_bucket", **labels, le="10.0") == 1
    assert sample(registry, "http_request_duration_seconds_sum", **labels) >= 0.05


async def test_buckets_are_configurable(make_client: Callable[..., httpx.AsyncClient]) -> None:
    registry = CollectorRegistry()
    async with make_client(registry=registry, buckets=[0.3, 3.0]) as c:
        await c.get("/users/1")
    labels = {"method": "GET", "route": "/users/{user_id}"}
    assert sample(registry, "http_request_duration_seconds_bucket", **labels, le="0.3") == 1
    assert (
        registry.get_sample_value("http_request_duration_seconds_bucket", {**labels, "le": "0.005"})
        is None
    )


def test_invalid_buckets_are_rejected() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        opsbook.instrument(
            build_app(),
            service="x",
            registry=CollectorRegistry(),
            buckets=[1, 0.5],
            configure_logs=False,
        )


async def test_in_progress_gauge_returns_to_zero(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    await client.get("/users/1")
    await client.get("/boom")
    assert sample(registry, "http_requests_in_progress", method="GET") == 0


async def test_in_progress_gauge_counts_requests_being_handled(
    make_client: Callable[..., httpx.AsyncClient], registry: CollectorRegistry
) -> None:
    import asyncio

    from fastapi import FastAPI

    app = FastAPI()
    release = asyncio.Event()
    all_inside = asyncio.Event()
    seen: list[float] = []

    @app.get("/wait")
    async def wait() -> dict[str, bool]:
        seen.append(sample(registry, "http_requests_in_progress", method="GET"))
        if len(seen) == 3:
            all_inside.set()
        await release.wait()
        return {"ok": True}

    async with make_client(app) as c:
        tasks = [asyncio.create_task(c.get("/wait")) for _ in range(3)]
        await asyncio.wait_for(all_inside.wait(), 10)
        assert sample(registry, "http_requests_in_progress", method="GET") == 3
        release.set()
        await asyncio.gather(*tasks)
    assert sample(registry, "http_requests_in_progress", method="GET") == 0


async def test_excluded_paths_are_not_recorded(
    make_client: Callable[..., httpx.AsyncClient], registry: CollectorRegistry
) -> None:
    async with make_client(exclude_paths=["/users/1", "/v2/*"]) as c:
        await c.get("/users/1")
        await c.get("/users/2")
        await c.get("/v2/items/a")
        await c.get("/metrics")
    assert (
        sample(
            registry, "http_requests_total", method="GET", route="/users/{user_id}", status="200"
        )
        == 1
    )
    assert (
        sample(
            registry, "http_requests_total", method="GET", route="/v2/items/{item}", status="200"
        )
        == 0
    )
    # With an explicit list, /metrics is observed like any other path.
    assert (
        sample(registry, "http_requests_total", method="GET", route=UNMATCHED_ROUTE, status="200")
        == 1
    )


async def test_metrics_and_health_are_excluded_by_default(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    await client.get("/metrics")
    await client.get("/health")
    await client.get("/health/detailed")
    text = (await client.get("/metrics")).text
    assert "http_requests_total{" not in text


async def test_metrics_endpoint_speaks_prometheus_text(client: httpx.AsyncClient) -> None:
    await client.get("/users/5")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert {"http_requests", "http_request_duration_seconds", "http_requests_in_progress"} <= set(
        families
    )
    [info] = families["service_info"].samples
    assert info.labels == {"service": "users-api", "version": "2.3.4", "environment": "staging"}


async def test_metrics_endpoint_speaks_openmetrics_when_asked(client: httpx.AsyncClient) -> None:
    await client.get("/users/5")
    response = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")
    assert "# TYPE http_requests counter" in response.text


async def test_metrics_endpoint_rejects_other_methods(client: httpx.AsyncClient) -> None:
    response = await client.post("/metrics")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


async def test_user_metrics_in_the_same_registry_are_exposed(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    from prometheus_client import Counter

    Counter("orders_placed", "Orders placed.", registry=registry).inc(4)
    assert "orders_placed_total 4.0" in (await client.get("/metrics")).text


def test_instrumenting_twice_is_refused() -> None:
    app = build_app()
    opsbook.instrument(app, service="a", registry=CollectorRegistry(), configure_logs=False)
    with pytest.raises(ValueError, match="already instrumented"):
        opsbook.instrument(app, service="a", registry=CollectorRegistry(), configure_logs=False)


def test_two_apps_can_share_one_registry() -> None:
    registry = CollectorRegistry()
    opsbook.instrument(build_app(), service="a", registry=registry, configure_logs=False)
    opsbook.instrument(build_app(), service="b", registry=registry, configure_logs=False)
    with pytest.raises(ValueError, match="already registered"):
        opsbook.instrument(
            build_app(), service="c", registry=registry, buckets=[1.0], configure_logs=False
        )


async def test_metrics_can_be_turned_off(
    make_client: Callable[..., httpx.AsyncClient], registry: CollectorRegistry
) -> None:
    async with make_client(metrics=False) as c:
        response = await c.get("/users/1")
        assert response.headers["x-request-id"]
    assert (
        sample(
            registry, "http_requests_total", method="GET", route="/users/{user_id}", status="200"
        )
        == 0
    )


async def test_mount_templates_for_sub_apps_and_parameterised_mounts(
    make_client: Callable[..., httpx.AsyncClient], registry: CollectorRegistry
) -> None:
    from fastapi import FastAPI
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    async def static_files(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        await PlainTextResponse("file")(scope, receive, send)  # type: ignore[arg-type]

    async def tenant_item(request: object) -> PlainTextResponse:
        return PlainTextResponse("item")

    app = FastAPI()
    app.router.routes.append(Mount("/static", app=static_files))
    app.router.routes.append(
        Mount("/tenants/{tenant}", routes=[Route("/items/{item}", tenant_item)])
    )
    async with make_client(app) as c:
        for path in ("/static/a.css", "/static/js/b.js"):
            assert (await c.get(path)).text == "file"
        for tenant in ("acme", "globex", "initech"):
            assert (await c.get(f"/tenants/{tenant}/items/7")).text == "item"
        assert (await c.get("/tenants/acme/nothing-here")).status_code == 404
    total = "http_requests_total"
    assert sample(registry, total, method="GET", route="/static/{path}", status="200") == 2
    assert (
        sample(registry, total, method="GET", route="/tenants/{tenant}/items/{item}", status="200")
        == 3
    )
    assert (
        sample(registry, total, method="GET", route="/tenants/{tenant}/{path}", status="404") == 1
    )
    # No concrete tenant leaks into a label value.
    exposition = generate_latest(registry).decode()
    assert "acme" not in exposition and "globex" not in exposition


async def test_exposition_passes_promtool_and_the_openmetrics_parser(
    client: httpx.AsyncClient,
) -> None:
    import asyncio
    import subprocess

    from prometheus_client.openmetrics.parser import (
        text_string_to_metric_families as parse_openmetrics,
    )

    from tests.conftest import require_tool

    promtool = require_tool("promtool", "prometheus")
    for path in ("/users/1", "/boom", "/nope", "/v2/items/a"):
        await client.get(path)
    text = (await client.get("/metrics")).text
    lint = await asyncio.to_thread(
        subprocess.run,
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    openmetrics = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    families = {f.name: f for f in parse_openmetrics(openmetrics.text)}  # strict: raises if bad
    assert families["http_requests"].type == "counter"
    assert families["http_request_duration_seconds"].type == "histogram"
