"""The health endpoints as plain ASGI handlers.

`GET /health` is liveness and touches no dependency. `GET /health/detailed` (and
`/health?detailed=true`) is readiness: every check, concurrently. `GET /health/{component}` runs
one component's check. 200 for pass and warn, 503 for fail, `application/health+json` always.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import orjson

from opsbook.instrument.health.model import (
    HEALTH_JSON,
    ServiceIdentity,
    http_status,
    report_document,
    utc_now,
)
from opsbook.instrument.health.runner import HealthRunner

Scope = MutableMapping[str, Any]
Send = Any
Receive = Any

_TRUE = {"1", "true", "yes", "on"}


class HealthEndpoints:
    def __init__(self, path: str, identity: ServiceIdentity, runner: HealthRunner) -> None:
        self.path = path.rstrip("/") or "/health"
        self.identity = identity
        self.runner = runner
        self._component_prefix = self.path + "/"

    def matches(self, path: str) -> bool:
        return path == self.path or path.startswith(self._component_prefix)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(
                send, 405, {"status": "fail", "output": "use GET"}, [(b"allow", b"GET, HEAD")]
            )
            return
        path: str = scope["path"]
        if path == self.path:
            if _wants_detail(scope.get("query_string", b"")):
                await self._readiness(send)
            else:
                await self._liveness(send)
            return
        component = path[len(self._component_prefix) :].rstrip("/")
        if component == "detailed":
            await self._readiness(send)
        elif component == "live":
            await self._liveness(send)
        elif component in self.runner.checks:
            await self._component(send, component)
        else:
            known = sorted(self.runner.checks)
            await _respond(
                send,
                404,
                {
                    "status": "fail",
                    "output": f"no health check named {component!r}; known components: "
                    + (", ".join(known) if known else "none"),
                },
            )

    async def _liveness(self, send: Send) -> None:
        identity = self.identity
        await _respond(
            send,
            200,
            {
                "status": "pass",
                "version": identity.version,
                "releaseId": identity.release_id,
                "serviceId": identity.service,
            },
        )

    async def _readiness(self, send: Send) -> None:
        results = await self.runner.run()
        document = report_document(self.identity, results, now=utc_now())
        await _respond(send, http_status(document["status"]), document)

    async def _component(self, send: Send, component: str) -> None:
        results = await self.runner.run([component])
        document = report_document(self.identity, results, now=utc_now(), include_uptime=False)
        # On its own endpoint a component's real status counts, critical or not.
        document["status"] = results[0].status
        await _respond(send, http_status(document["status"]), document)


def _wants_detail(query_string: bytes) -> bool:
    if not query_string:
        return False
    return any(
        key == "detailed" and value.lower() in _TRUE
        for key, value in parse_qsl(query_string.decode("latin-1"))
    )


async def _respond(
    send: Send,
    status: int,
    document: dict[str, Any],
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = orjson.dumps(document)
    headers = [
        (b"content-type", HEALTH_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
