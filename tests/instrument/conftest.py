"""Helpers for driving an instrumented FastAPI app through real HTTP (ASGI transport)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from prometheus_client import CollectorRegistry
from starlette.routing import Mount, Route

import opsbook.instrument


def build_app() -> FastAPI:
    app = FastAPI()

    @app.get("/users/{user_id}")
    async def get_user(user_id: int) -> dict[str, Any]:
        return {"user_id": user_id, "request_id": opsbook.instrument.get_request_id()}

    @app.get("/sync/{name}")
    def sync_handler(name: str) -> dict[str, Any]:
        return {"name": name, "request_id": opsbook.instrument.get_request_id()}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("database exploded")

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(status_code=418, detail="short and stout")

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(0.05)
        return {"ok": "yes"}

    async def plain(request: Any) -> Any:
        from starlette.responses import PlainTextResponse

        return PlainTextResponse("mounted " + request.path_params.get("item", ""))

    app.router.routes.append(Mount("/v2", routes=[Route("/items/{item}", plain)]))
    return app


class LogFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def where(self, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.lines() if all(e.get(k) == v for k, v in match.items())]


@pytest.fixture
def log_file(tmp_path: Path) -> LogFile:
    return LogFile(tmp_path / "app.log.jsonl")


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def make_client(log_file: LogFile, registry: CollectorRegistry) -> Callable[..., Any]:
    """Instrument an app (the test app by default) and return an httpx client for it."""

    clients: list[httpx.AsyncClient] = []

    def factory(app: Any = None, **options: Any) -> httpx.AsyncClient:
        options.setdefault("service", "users-api")
        options.setdefault("version", "2.3.4")
        options.setdefault("environment", "staging")
        options.setdefault("registry", registry)
        options.setdefault("log_file", str(log_file.path))
        served = opsbook.instrument(build_app() if app is None else app, **options)
        transport = httpx.ASGITransport(app=served, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        clients.append(client)
        return client

    return factory


@pytest.fixture
async def client(make_client: Callable[..., httpx.AsyncClient]) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as c:
        yield c


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value
