from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
import structlog

from tests.instrument.conftest import LogFile

REQUEST_FIELDS = {
    "timestamp",
    "level",
    "logger",
    "message",
    "service",
    "version",
    "environment",
    "request_id",
    "method",
    "route",
    "path",
    "status",
    "duration_ms",
    "client",
}


async def test_one_json_line_per_request_with_every_field(
    client: httpx.AsyncClient, log_file: LogFile
) -> None:
    response = await client.get("/users/42?token=s3cr3t", headers={"X-Request-ID": "log-line-1"})
    [line] = log_file.where(logger="opsbook.access")
    assert set(line) >= REQUEST_FIELDS
    assert line["level"] == "INFO"
    assert line["message"] == "request"
    assert (line["service"], line["version"], line["environment"]) == (
        "users-api",
        "2.3.4",
        "staging",
    )
    assert line["request_id"] == "log-line-1" == response.headers["x-request-id"]
    assert (line["method"], line["route"], line["path"], line["status"]) == (
        "GET",
        "/users/{user_id}",
        "/users/42",
        200,
    )
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["client"] == "127.0.0.1"
    assert datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).tzinfo is not None
    # Query strings carry tokens; the path is logged without them.
    assert "s3cr3t" not in str(line)


async def test_user_id_hook(
    make_client: Callable[..., httpx.AsyncClient], log_file: LogFile
) -> None:
    def user_of(scope: dict[str, Any]) -> str | None:
        for name, value in scope["headers"]:
            if name == b"x-user":
                return value.decode()
        return None

    async with make_client(user_id=user_of) as c:
        await c.get("/users/1", headers={"X-User": "user-789"})
        await c.get("/users/2")
    first, second = log_file.where(logger="opsbook.access")
    assert first["user_id"] == "user-789"
    assert second["user_id"] is None


async def test_a_broken_user_id_hook_does_not_lose_the_request_line(
    make_client: Callable[..., httpx.AsyncClient], log_file: LogFile
) -> None:
    def broken(scope: dict[str, Any]) -> str:
        raise KeyError("user")

    async with make_client(user_id=broken) as c:
        response = await c.get("/users/1")
    assert response.status_code == 200
    [line] = log_file.where(logger="opsbook.access")
    assert line["user_id"] is None
    [warning] = log_file.where(logger="opsbook.instrument")
    assert "KeyError" in warning["message"]


async def test_slow_requests_are_logged_at_warning(
    make_client: Callable[..., httpx.AsyncClient], log_file: LogFile
) -> None:
    async with make_client(slow_request_ms=20) as c:
        await c.get("/slow")  # 50 ms
        await c.get("/users/1")
    slow, fast = log_file.where(logger="opsbook.access")
    assert slow["level"] == "WARNING" and slow["slow"] is True and slow["route"] == "/slow"
    assert slow["duration_ms"] >= 20
    assert fast["level"] == "INFO" and "slow" not in fast


async def test_stdlib_and_structlog_records_share_the_format_and_request_id(
    log_file: LogFile, make_client: Callable[..., httpx.AsyncClient]
) -> None:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/work")
    async def work() -> dict[str, bool]:
        logging.getLogger("app.pricing").info(
            "optimization completed for %s", "unit-456", extra={"unit_id": "unit-456"}
        )
        structlog.get_logger().warning("cache miss", key="prices")
        try:
            raise ZeroDivisionError("nope")
        except ZeroDivisionError:
            logging.getLogger("app.pricing").exception("could not price")
        return {"ok": True}

    async with make_client(app) as c:
        await c.get("/work", headers={"X-Request-ID": "shared-id"})
    lines = log_file.lines()
    stdlib = next(e for e in lines if e["message"] == "optimization completed for unit-456")
    assert stdlib["logger"] == "app.pricing" and stdlib["level"] == "INFO"
    assert stdlib["unit_id"] == "unit-456"
    assert stdlib["request_id"] == "shared-id"
    assert stdlib["service"] == "users-api"
    native = next(e for e in lines if e["message"] == "cache miss")
    assert native["level"] == "WARNING" and native["key"] == "prices"
    assert native["request_id"] == "shared-id"
    failure = next(e for e in lines if e["message"] == "could not price")
    assert failure["level"] == "ERROR"
    assert "ZeroDivisionError: nope" in failure["exception"]
    assert list(stdlib)[:4] == ["timestamp", "level", "logger", "message"]


async def test_records_outside_requests_have_no_request_id(
    client: httpx.AsyncClient, log_file: LogFile
) -> None:
    logging.getLogger("app.startup").warning("warming caches")
    [line] = log_file.where(message="warming caches")
    assert "request_id" not in line


async def test_log_level_filters(
    make_client: Callable[..., httpx.AsyncClient], log_file: LogFile
) -> None:
    async with make_client(log_level="WARNING") as c:
        await c.get("/users/1")
        logging.getLogger("app").info("chatty")
        logging.getLogger("app").error("important")
    messages = [e["message"] for e in log_file.lines()]
    assert "important" in messages
    assert "chatty" not in messages and "request" not in messages


def test_unknown_log_level_is_a_clear_error() -> None:
    import pytest

    from opsbook.instrument import configure_logging

    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        configure_logging(service="x", version="1", environment="dev", level="LOUD")


async def test_request_logging_can_be_turned_off(
    make_client: Callable[..., httpx.AsyncClient], log_file: LogFile
) -> None:
    async with make_client(request_logging=False) as c:
        await c.get("/users/1")
    assert log_file.where(logger="opsbook.access") == []


def test_logs_go_to_a_text_only_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import json

    from opsbook.instrument import configure_logging

    notebook_stdout = io.StringIO()  # like Jupyter's: no .buffer
    monkeypatch.setattr("sys.stdout", notebook_stdout)
    configure_logging(service="nb", version="1", environment="dev")
    logging.getLogger("nb").warning("from a notebook")
    [line] = [json.loads(x) for x in notebook_stdout.getvalue().splitlines()]
    assert line["message"] == "from a notebook" and line["service"] == "nb"
