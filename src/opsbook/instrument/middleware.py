"""The one pure-ASGI middleware `instrument()` installs, outermost in the app.

Per HTTP request it: accepts or mints the request id (and returns it on every response, unhandled
500s included), answers opsbook's own endpoints (`/metrics`, `/health...`), and records metrics
and the access log line once the response is done. Being outermost means it sees the 500 that
Starlette's error middleware sends, and the route the router matched.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from opsbook.instrument.health.endpoints import HealthEndpoints
from opsbook.instrument.logging import AccessLog
from opsbook.instrument.metrics import HttpMetrics
from opsbook.instrument.request_id import REQUEST_ID_HEADER, accept_request_id, request_id_var
from opsbook.instrument.routes import RouteTemplates

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_HEADER_NAME = REQUEST_ID_HEADER.encode("ascii")
_PLAIN_500 = b"Internal Server Error"
_RESPONSE_500_START: dict[str, Any] = {
    "type": "http.response.start",
    "status": 500,
    "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(_PLAIN_500)).encode()),
    ],
}
_RESPONSE_500_BODY: dict[str, Any] = {"type": "http.response.body", "body": _PLAIN_500}
# nginx's code for "client closed the connection before the response": not the server's fault.
CLIENT_CLOSED_REQUEST = 499


class PathFilter:
    """Paths left out of metrics and access logs: exact paths, or prefixes written `/static/*`."""

    def __init__(self, patterns: list[str]) -> None:
        self.exact = frozenset(p for p in patterns if not p.endswith("*"))
        self.prefixes = tuple(p[:-1] for p in patterns if p.endswith("*"))

    def __call__(self, path: str) -> bool:
        return path in self.exact or (bool(self.prefixes) and path.startswith(self.prefixes))


class OpsbookMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: RouteTemplates,
        metrics: HttpMetrics | None,
        access_log: AccessLog | None,
        endpoints: dict[str, ASGIApp],
        health: HealthEndpoints | None,
        excluded: PathFilter,
    ) -> None:
        self.app = app
        self.routes = routes
        self.metrics = metrics
        self.access_log = access_log
        self.endpoints = endpoints
        self.health = health
        self.excluded = excluded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        incoming = None
        for name, value in scope["headers"]:
            if name == _HEADER_NAME:
                incoming = value
                break
        request_id = accept_request_id(incoming)
        token = request_id_var.set(request_id)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        id_header = (_HEADER_NAME, request_id.encode("ascii"))

        path: str = scope["path"]
        target = self.endpoints.get(path)
        if target is None:
            target = (
                self.health if self.health is not None and self.health.matches(path) else self.app
            )
        observed = not self.excluded(path) and (
            self.metrics is not None or self.access_log is not None
        )

        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                # An app that sets its own X-Request-ID keeps it; never send two.
                if not any(name.lower() == _HEADER_NAME for name, _ in headers):
                    headers.append(id_header)
                message["headers"] = headers
            await send(message)

        metrics = self.metrics if observed else None
        access_log = self.access_log if observed else None
        method: str = scope["method"]
        original_root_path: str = scope.get("root_path", "")
        if metrics is not None:
            metrics.started(method)
        exception: str | None = None
        started = time.perf_counter()
        try:
            await target(scope, receive, send_with_id)
        except Exception as exc:
            exception = type(exc).__name__
            if status == 0:
                # Nothing reached the client yet: answer 500 ourselves, with the request id, so
                # the user can quote it. The exception still propagates to the server's log.
                # If the client is already gone this fails too; the original error matters more.
                with contextlib.suppress(Exception):
                    await send_with_id(dict(_RESPONSE_500_START))  # copies: headers get added
                    await send_with_id(dict(_RESPONSE_500_BODY))
            raise
        except BaseException:
            if status == 0:
                status = CLIENT_CLOSED_REQUEST
            raise
        finally:
            if metrics is not None or access_log is not None:
                duration = time.perf_counter() - started
                route = self.routes.template(scope, original_root_path)
                if metrics is not None:
                    metrics.finished(method, route, status, duration, exception)
                if access_log is not None:
                    access_log.emit(scope, route=route, status=status, duration_s=duration)
            request_id_var.reset(token)
