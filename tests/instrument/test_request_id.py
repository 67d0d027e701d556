from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI, Request

from tests.instrument.conftest import LogFile

GENERATED = re.compile(r"^[0-9a-f]{32}$")


async def test_well_formed_incoming_id_is_kept_and_visible_to_handlers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/users/7", headers={"X-Request-ID": "req-123456"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-123456"
    assert response.json()["request_id"] == "req-123456"


async def test_uuid_and_trace_style_ids_are_accepted(client: httpx.AsyncClient) -> None:
    for value in (
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "Root=1-5759e988-bd862e3fe1be46a994272793",
    ):
        response = await client.get("/users/1", headers={"X-Request-ID": value})
        assert response.headers["x-request-id"] == value


async def test_missing_id_is_generated(client: httpx.AsyncClient) -> None:
    first = await client.get("/users/1")
    second = await client.get("/users/1")
    assert GENERATED.match(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert first.json()["request_id"] == first.headers["x-request-id"]


@pytest.mark.parametrize(
    "bad",
    [
        "x" * 129,  # too long
        "<script>alert(1)</script>",
        "id with spaces",
        "id;drop table",
        '"quoted"',
        "-leading-dash",
        "ünïcode",
    ],
)
async def test_malformed_or_oversized_id_is_replaced_never_reflected(
    client: httpx.AsyncClient, log_file: LogFile, bad: str
) -> None:
    response = await client.get("/users/1", headers={"X-Request-ID": bad.encode("utf-8")})
    returned = response.headers["x-request-id"]
    assert returned != bad
    assert GENERATED.match(returned)
    assert bad not in response.text
    assert all(bad not in line for line in log_file.path.read_text().splitlines())


async def test_longest_allowed_id_is_kept(client: httpx.AsyncClient) -> None:
    value = "a" * 128
    response = await client.get("/users/1", headers={"X-Request-ID": value})
    assert response.headers["x-request-id"] == value


async def test_unhandled_500_still_carries_the_request_id(
    client: httpx.AsyncClient, log_file: LogFile
) -> None:
    response = await client.get("/boom", headers={"X-Request-ID": "trace-me-500"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "trace-me-500"
    [line] = log_file.where(logger="opsbook.access", path="/boom")
    assert line["request_id"] == "trace-me-500"
    assert line["status"] == 500


async def test_handled_errors_and_404s_carry_the_request_id(client: httpx.AsyncClient) -> None:
    for path, status in (("/teapot", 418), ("/no/such/page", 404)):
        response = await client.get(path, headers={"X-Request-ID": f"id-{status}"})
        assert response.status_code == status
        assert response.headers["x-request-id"] == f"id-{status}"


async def test_sync_handlers_in_the_threadpool_see_the_request_id(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/sync/x", headers={"X-Request-ID": "thread-id-1"})
    assert response.json()["request_id"] == "thread-id-1"


async def test_plain_asgi_app_is_wrapped_and_gets_ids_even_when_it_crashes(
    make_client: object, log_file: LogFile
) -> None:
    async def raw_app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        raise ValueError("no response at all")

    async with make_client(raw_app) as c:  # type: ignore[operator]
        response = await c.get("/anything", headers={"X-Request-ID": "raw-1"})
        again = await c.get("/anything", headers={"X-Request-ID": "raw-2"})
    assert response.status_code == again.status_code == 500
    assert response.headers.get_list("x-request-id") == ["raw-1"]
    assert again.headers.get_list("x-request-id") == ["raw-2"]
    assert response.text == "Internal Server Error"
    first, _ = log_file.where(logger="opsbook.access")
    assert first["status"] == 500
    assert first["route"] == "__unmatched__"


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from opsbook.instrument.request_id import MAX_REQUEST_ID_LENGTH, accept_request_id  # noqa: E402

SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:=+/-]*$")


@given(st.binary(max_size=300))
def test_whatever_arrives_the_id_used_is_safe_and_bounded(raw: bytes) -> None:
    chosen = accept_request_id(raw)
    assert SAFE.match(chosen)
    assert len(chosen) <= MAX_REQUEST_ID_LENGTH
    if chosen.encode() != raw:
        assert GENERATED.match(chosen)  # replaced, not trimmed or escaped


async def test_request_state_carries_the_id(make_client: object) -> None:
    app = FastAPI()

    @app.get("/state")
    async def state(request: Request) -> dict[str, str]:
        return {"id": request.state.request_id}

    async with make_client(app) as c:  # type: ignore[operator]
        response = await c.get("/state", headers={"X-Request-ID": "from-state"})
    assert response.json() == {"id": "from-state"}


async def test_an_id_the_app_sets_itself_is_not_duplicated(make_client: object) -> None:
    from starlette.responses import JSONResponse

    app = FastAPI()

    @app.get("/own")
    async def own() -> JSONResponse:
        return JSONResponse({}, headers={"X-Request-ID": "set-by-app"})

    async with make_client(app) as c:  # type: ignore[operator]
        response = await c.get("/own", headers={"X-Request-ID": "incoming"})
    assert response.headers.get_list("x-request-id") == ["set-by-app"]


async def test_the_apps_exception_surfaces_even_when_the_client_is_gone() -> None:
    from prometheus_client import CollectorRegistry

    import opsbook.instrument

    async def raw_app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        raise ValueError("the real problem")

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    async def gone(message: object) -> None:
        raise OSError("client disconnected")

    app = opsbook.instrument(
        raw_app, service="x", registry=CollectorRegistry(), configure_logs=False
    )
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    with pytest.raises(ValueError, match="the real problem"):
        await app(scope, receive, gone)
