from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import time_machine

from opsbook.instrument import (
    CPUCheck,
    DiskCheck,
    FunctionCheck,
    HTTPCheck,
    JobCheck,
    MemoryCheck,
    Observation,
    RedisCheck,
    SQLAlchemyCheck,
)

HEALTH_JSON = "application/health+json"


async def get_json(client: httpx.AsyncClient, path: str) -> tuple[int, dict[str, Any]]:
    response = await client.get(path)
    assert response.headers["content-type"] == HEALTH_JSON
    return response.status_code, response.json()


async def test_liveness_touches_no_dependency(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    calls = 0

    def counted() -> str:
        nonlocal calls
        calls += 1
        return "fail"

    async with make_client(checks=[FunctionCheck(counted, name="db")], release_id="abc123") as c:
        status, body = await get_json(c, "/health")
    assert status == 200
    assert body == {
        "status": "pass",
        "version": "2.3.4",
        "releaseId": "abc123",
        "serviceId": "users-api",
    }
    assert calls == 0


async def test_detailed_health_document(make_client: Callable[..., httpx.AsyncClient]) -> None:
    checks = [
        FunctionCheck(lambda: ("pass", 12, "items"), name="queue", measurement="depth"),
        MemoryCheck(reader=lambda: 40.0),
    ]
    async with make_client(checks=checks) as c:
        status, body = await get_json(c, "/health/detailed")
        status_q, body_q = await get_json(c, "/health?detailed=true")
    assert status == status_q == 200
    assert body["status"] == body_q["status"] == "pass"
    assert (body["version"], body["releaseId"], body["serviceId"]) == (
        "2.3.4",
        "2.3.4",
        "users-api",
    )
    [queue] = body["checks"]["queue:depth"]
    assert queue["componentType"] == "component"
    assert (queue["observedValue"], queue["observedUnit"], queue["status"]) == (12, "items", "pass")
    datetime.fromisoformat(queue["time"].replace("Z", "+00:00"))
    [memory] = body["checks"]["memory:utilization"]
    assert (memory["componentType"], memory["observedValue"], memory["observedUnit"]) == (
        "system",
        40.0,
        "percent",
    )
    [uptime] = body["checks"]["uptime"]
    assert uptime["observedUnit"] == "s" and uptime["observedValue"] >= 0
    assert "output" not in body


@pytest.mark.parametrize(
    ("percent", "expected_status", "http"),
    [(50.0, "pass", 200), (85.0, "warn", 200), (89.9, "warn", 200), (90.0, "fail", 503)],
)
async def test_resource_thresholds_default_to_85_and_90(
    make_client: Callable[..., httpx.AsyncClient], percent: float, expected_status: str, http: int
) -> None:
    checks = [DiskCheck(reader=lambda: percent), CPUCheck(reader=lambda: 1.0)]
    async with make_client(checks=checks) as c:
        status, body = await get_json(c, "/health/detailed")
    assert status == http
    assert body["status"] == expected_status
    assert body["checks"]["disk:utilization"][0]["status"] == expected_status
    if expected_status != "pass":
        assert body["output"] == f"{expected_status}: disk"
        assert f"{percent}%" in body["checks"]["disk:utilization"][0]["output"]


async def test_real_system_readings(make_client: Callable[..., httpx.AsyncClient]) -> None:
    async with make_client(checks=[DiskCheck("/"), MemoryCheck(), CPUCheck()]) as c:
        _, body = await get_json(c, "/health/detailed")
    for key in ("disk:utilization", "memory:utilization", "cpu:utilization"):
        value = body["checks"][key][0]["observedValue"]
        assert 0 <= value <= 100


async def test_a_hanging_check_fails_with_its_timeout(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    async def hangs() -> str:
        await asyncio.Event().wait()
        return "pass"

    async with make_client(checks=[FunctionCheck(hangs, name="upstream", timeout=0.2)]) as c:
        status, body = await get_json(c, "/health/detailed")
    assert status == 503
    [entry] = body["checks"]["upstream:status"]
    assert entry["status"] == "fail"
    assert entry["output"] == "timed out after 0.2 s"


async def test_a_raising_check_fails_with_the_exception_type_not_a_500(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    def raises() -> str:
        raise ConnectionResetError("password=hunter2 in a message")

    async with make_client(checks=[FunctionCheck(raises, name="billing")]) as c:
        status, body = await get_json(c, "/health/detailed")
        component_status, _ = await get_json(c, "/health/billing")
    assert status == component_status == 503
    [entry] = body["checks"]["billing:status"]
    assert entry["status"] == "fail"
    assert "ConnectionResetError" in entry["output"]
    assert "hunter2" not in str(body)


async def test_a_check_returning_garbage_fails_cleanly(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    async with make_client(checks=[FunctionCheck(lambda: 42, name="odd")]) as c:
        status, body = await get_json(c, "/health/detailed")
    assert status == 503
    assert "TypeError" in body["checks"]["odd:status"][0]["output"]


async def test_checks_run_concurrently(make_client: Callable[..., httpx.AsyncClient]) -> None:
    # Each check waits for the other to have started: sequential execution would deadlock and
    # time out; concurrent execution passes both.
    a_started, b_started = asyncio.Event(), asyncio.Event()

    async def check_a() -> str:
        a_started.set()
        await b_started.wait()
        return "pass"

    async def check_b() -> str:
        b_started.set()
        await a_started.wait()
        return "pass"

    checks = [FunctionCheck(check_a, timeout=1), FunctionCheck(check_b, timeout=1)]
    async with make_client(checks=checks) as c:
        status, body = await get_json(c, "/health/detailed")
    assert status == 200, body


async def test_results_are_cached_and_a_flood_shares_one_evaluation(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return "pass"

    async with make_client(checks=[FunctionCheck(counted, name="db")], health_cache_ttl=30) as c:
        responses = await asyncio.gather(*(c.get("/health/detailed") for _ in range(50)))
        await c.get("/health/db")
    assert all(r.status_code == 200 for r in responses)
    assert calls == 1


async def test_cache_expires(make_client: Callable[..., httpx.AsyncClient]) -> None:
    calls = 0

    def counted() -> str:
        nonlocal calls
        calls += 1
        return "pass"

    async with make_client(checks=[FunctionCheck(counted, name="db")], health_cache_ttl=0) as c:
        await c.get("/health/detailed")
        await c.get("/health/detailed")
    assert calls == 2


async def test_component_endpoint_and_unknown_component(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    checks = [
        FunctionCheck(lambda: "warn", name="scheduler"),
        FunctionCheck(lambda: "fail", name="cache"),
    ]
    async with make_client(checks=checks) as c:
        status, body = await get_json(c, "/health/scheduler")
        assert status == 200 and body["status"] == "warn"
        assert set(body["checks"]) == {"scheduler:status"}
        status, body = await get_json(c, "/health/nope")
    assert status == 404
    assert "cache, scheduler" in body["output"]


async def test_non_critical_failure_degrades_to_warn(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    checks = [FunctionCheck(lambda: "fail", name="recommendations", critical=False)]
    async with make_client(checks=checks) as c:
        status, body = await get_json(c, "/health/detailed")
        own_status, own = await get_json(c, "/health/recommendations")
    assert status == 200 and body["status"] == "warn"
    assert body["checks"]["recommendations:status"][0]["critical"] is False
    assert own_status == 503 and own["status"] == "fail"


async def test_health_rejects_writes(client: httpx.AsyncClient) -> None:
    response = await client.post("/health")
    assert response.status_code == 405


async def test_function_check_return_shapes(make_client: Callable[..., httpx.AsyncClient]) -> None:
    async def as_mapping() -> dict[str, Any]:
        return {"status": "warn", "observed_value": 7, "observed_unit": "jobs", "output": "backlog"}

    checks = [
        FunctionCheck(lambda: True, name="flag"),
        FunctionCheck(as_mapping, name="mapping"),
        FunctionCheck(lambda: Observation("lag", "pass", 1.5, "s"), name="obs"),
    ]
    async with make_client(checks=checks) as c:
        _, body = await get_json(c, "/health/detailed")
    assert body["checks"]["flag:status"][0]["status"] == "pass"
    assert body["checks"]["mapping:status"][0] | {"time": None} == {
        "componentId": "mapping",
        "componentType": "component",
        "status": "warn",
        "observedValue": 7,
        "observedUnit": "jobs",
        "output": "backlog",
        "time": None,
    }
    assert body["checks"]["obs:lag"][0]["observedValue"] == 1.5


def test_check_configuration_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="pass name="):
        FunctionCheck(lambda: "pass")
    with pytest.raises(ValueError, match="warn <= fail"):
        DiskCheck(warn=95, fail=90)
    with pytest.raises(ValueError, match="exactly one of url= or client="):
        RedisCheck()
    with pytest.raises(ValueError, match="absolute http"):
        HTTPCheck("/relative")


def test_duplicate_check_names_are_refused() -> None:
    import opsbook.instrument
    from tests.instrument.conftest import build_app

    with pytest.raises(ValueError, match="db used more than once"):
        opsbook.instrument(
            build_app(),
            service="x",
            configure_logs=False,
            checks=[
                FunctionCheck(lambda: "pass", name="db"),
                FunctionCheck(lambda: "pass", name="db"),
            ],
        )


async def test_job_check_ages(make_client: Callable[..., httpx.AsyncClient]) -> None:
    last_run: dict[str, datetime | None] = {"at": None}
    job = JobCheck(
        "nightly_import",
        max_age=timedelta(hours=24),
        warn_age=timedelta(hours=12),
        last_success=lambda: last_run["at"],
    )
    with time_machine.travel(datetime(2026, 11, 23, 12, 0, tzinfo=UTC), tick=False) as clock:
        async with make_client(checks=[job], health_cache_ttl=0) as c:
            status, body = await get_json(c, "/health/nightly_import")
            assert status == 200  # just started, nothing expected yet
            assert (
                "no successful run recorded"
                in body["checks"]["nightly_import:lastSuccess"][0]["output"]
            )

            last_run["at"] = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
            status, body = await get_json(c, "/health/nightly_import")
            entry = body["checks"]["nightly_import:lastSuccess"][0]
            assert (status, entry["status"], entry["observedValue"], entry["observedUnit"]) == (
                200,
                "pass",
                3600.0,
                "s",
            )
            clock.shift(timedelta(hours=13))
            status, body = await get_json(c, "/health/nightly_import")
            assert (status, body["status"]) == (200, "warn")
            clock.shift(timedelta(hours=12))
            status, body = await get_json(c, "/health/nightly_import")
            assert (status, body["status"]) == (503, "fail")
            assert (
                "last success 26h00m ago (allowed 24h00m)"
                in body["checks"]["nightly_import:lastSuccess"][0]["output"]
            )


async def test_job_check_record_success(make_client: Callable[..., httpx.AsyncClient]) -> None:
    with time_machine.travel(datetime(2026, 11, 23, 12, 0, tzinfo=UTC), tick=False) as clock:
        job = JobCheck("aggregate_refresh", max_age=60)
        async with make_client(checks=[job], health_cache_ttl=0) as c:
            clock.shift(timedelta(minutes=5))
            status, _ = await get_json(c, "/health/aggregate_refresh")
            assert status == 503  # never ran within its allowed age
            job.record_success()
            status, _ = await get_json(c, "/health/aggregate_refresh")
            assert status == 200


# --- real dependencies -------------------------------------------------------------------------


@pytest.mark.postgres
async def test_sqlalchemy_check_against_real_postgresql(
    make_client: Callable[..., httpx.AsyncClient], postgres_url: str
) -> None:
    engine = sa.create_engine(postgres_url, pool_size=3, max_overflow=1)
    try:
        async with make_client(checks=[SQLAlchemyCheck(engine)]) as c:
            status, body = await get_json(c, "/health/database")
        assert status == 200, body
        [latency] = body["checks"]["database:responseTime"]
        assert latency["status"] == "pass" and latency["observedUnit"] == "ms"
        assert latency["componentType"] == "datastore"
        [pool] = body["checks"]["database:connections"]
        assert (pool["poolSize"], pool["overflow"], pool["maxOverflow"]) == (3, 0, 1)
        assert pool["observedValue"] == 0  # the probe's connection went back to the pool
    finally:
        engine.dispose()


@pytest.mark.postgres
async def test_async_sqlalchemy_engine_against_real_postgresql(
    make_client: Callable[..., httpx.AsyncClient], postgres_url: str
) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(postgres_url)
    try:
        async with make_client(checks=[SQLAlchemyCheck(engine, name="db")]) as c:
            status, body = await get_json(c, "/health/db")
        assert status == 200, body
        assert body["checks"]["db:responseTime"][0]["status"] == "pass"
    finally:
        await engine.dispose()


@pytest.mark.redis
async def test_redis_check_against_real_redis(
    make_client: Callable[..., httpx.AsyncClient], redis_url: str
) -> None:
    async with make_client(checks=[RedisCheck(redis_url)]) as c:
        status, body = await get_json(c, "/health/redis")
    assert status == 200, body
    assert body["checks"]["redis:responseTime"][0]["status"] == "pass"


@pytest.mark.redis
async def test_redis_error_reply_is_reported(
    make_client: Callable[..., httpx.AsyncClient], redis_url: str
) -> None:
    # This Redis has no password: AUTH is answered with an error, which must surface as fail.
    with_password = redis_url.replace("redis://", "redis://:wrong-secret@")
    async with make_client(checks=[RedisCheck(with_password)]) as c:
        status, body = await get_json(c, "/health/redis")
    assert status == 503
    assert "RedisReplyError" in body["checks"]["redis:responseTime"][0]["output"]
    assert "wrong-secret" not in str(body)


@pytest.mark.postgres
@pytest.mark.redis
async def test_unreachable_dependency_gives_503_naming_the_component(
    make_client: Callable[..., httpx.AsyncClient],
    postgres_url: str,
    redis_url: str,
    unused_tcp_port_url: str,
) -> None:
    dead = sa.create_engine(
        f"postgresql+psycopg://app:s3cret-pw@{unused_tcp_port_url}/test",
        connect_args={"connect_timeout": 2},
    )
    live = sa.create_engine(postgres_url)
    try:
        checks = [
            SQLAlchemyCheck(live, name="database"),
            RedisCheck(redis_url),
            SQLAlchemyCheck(dead, name="reporting-db"),
            RedisCheck(f"redis://{unused_tcp_port_url}/0", name="sessions"),
        ]
        async with make_client(checks=checks) as c:
            status, body = await get_json(c, "/health/detailed")
        assert status == 503
        assert body["status"] == "fail"
        assert body["output"] == "fail: reporting-db, sessions"
        assert body["checks"]["database:responseTime"][0]["status"] == "pass"
        assert body["checks"]["redis:responseTime"][0]["status"] == "pass"
        assert body["checks"]["reporting-db:responseTime"][0]["output"].startswith(
            "OperationalError"
        )
        assert body["checks"]["sessions:responseTime"][0]["output"].startswith(
            "ConnectionRefusedError"
        )
        assert "s3cret-pw" not in str(body)
    finally:
        dead.dispose()
        live.dispose()


async def test_http_dependency_check_against_a_loopback_server(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    from tests.instrument.servers import running_http_server

    async with running_http_server({"/ok": 200, "/down": 503}) as base:
        checks = [
            HTTPCheck(f"{base}/ok", name="payments"),
            HTTPCheck(f"http://user:pw@{base.removeprefix('http://')}/down?key=abc", name="search"),
            HTTPCheck(f"{base}/down", name="legacy", expected_status=[200, 503]),
        ]
        async with make_client(checks=checks) as c:
            status, body = await get_json(c, "/health/detailed")
    assert status == 503
    assert body["checks"]["payments:responseTime"][0]["status"] == "pass"
    search = body["checks"]["search:responseTime"][0]
    assert search["status"] == "fail"
    assert search["output"].startswith("GET http://127.0.0.1:")
    assert search["output"].endswith("/down answered 503 (expected 200)")
    assert "pw" not in search["output"] and "key=abc" not in search["output"]
    assert body["checks"]["legacy:responseTime"][0]["status"] == "pass"
