"""`instrument(app, ...)`: one call that adds metrics, request ids, JSON logs and health."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

from prometheus_client import CollectorRegistry

from opsbook.instrument.health.checks import FunctionCheck, HealthCheck
from opsbook.instrument.health.endpoints import HealthEndpoints
from opsbook.instrument.health.model import ServiceIdentity, utc_now
from opsbook.instrument.health.runner import DEFAULT_CACHE_TTL, DEFAULT_CHECK_TIMEOUT, HealthRunner
from opsbook.instrument.logging import AccessLog, UserIdHook, configure_logging
from opsbook.instrument.metrics import (
    DEFAULT_BUCKETS,
    http_metrics,
    record_service_info,
)
from opsbook.instrument.metrics_endpoint import MetricsEndpoint
from opsbook.instrument.middleware import ASGIApp, OpsbookMiddleware, PathFilter
from opsbook.instrument.routes import RouteTemplates

App = TypeVar("App")

_MARK = "_opsbook_instrumented"


def instrument(
    app: App,
    *,
    service: str,
    version: str = "0.0.0",
    environment: str = "production",
    checks: Iterable[HealthCheck | Callable[[], Any]] = (),
    release_id: str | None = None,
    metrics: bool = True,
    request_logging: bool = True,
    configure_logs: bool = True,
    log_level: int | str = "INFO",
    log_file: str | None = None,
    slow_request_ms: float = 1000.0,
    user_id: UserIdHook | None = None,
    metrics_path: str | None = "/metrics",
    health_path: str | None = "/health",
    exclude_paths: Sequence[str] | None = None,
    buckets: Sequence[float] = DEFAULT_BUCKETS,
    registry: CollectorRegistry | None = None,
    health_timeout: float = DEFAULT_CHECK_TIMEOUT,
    health_cache_ttl: float = DEFAULT_CACHE_TTL,
) -> App:
    """Instrument an ASGI app; returns the app to serve.

    A Starlette or FastAPI app is changed in place (and returned); any other ASGI callable is
    wrapped, so write `app = instrument(app, ...)` to cover both.
    """
    if not service:
        raise ValueError("instrument(): service= must name the service, e.g. service='billing-api'")
    if getattr(app, _MARK, False):
        raise ValueError(
            f"instrument(): this app is already instrumented as {getattr(app, _MARK)!r}"
        )
    for name, path in (("metrics_path", metrics_path), ("health_path", health_path)):
        if path is not None and not path.startswith("/"):
            raise ValueError(f"instrument(): {name} must start with '/' (got {path!r})")

    if configure_logs:
        configure_logging(
            service=service,
            version=version,
            environment=environment,
            level=log_level,
            log_file=log_file,
        )
    http = http_metrics(registry, buckets) if metrics else None
    record_service_info(registry, service, version, environment)

    endpoints: dict[str, ASGIApp] = {}
    if metrics_path is not None:
        endpoints[metrics_path] = MetricsEndpoint(registry)
    health = None
    if health_path is not None:
        identity = ServiceIdentity(
            service=service,
            version=version,
            release_id=release_id or version,
            environment=environment,
            started_at=utc_now(),
        )
        runner = HealthRunner(
            [_as_check(c) for c in checks], timeout=health_timeout, cache_ttl=health_cache_ttl
        )
        health = HealthEndpoints(health_path, identity, runner)

    if exclude_paths is None:
        exclude_paths = [p for p in (metrics_path, health_path) if p is not None]
        if health_path is not None:
            exclude_paths.append(health_path.rstrip("/") + "/*")

    def wrap(inner: ASGIApp) -> OpsbookMiddleware:
        return OpsbookMiddleware(
            inner,
            routes=RouteTemplates(app),
            metrics=http,
            access_log=AccessLog(slow_request_ms=slow_request_ms, user_id=user_id)
            if request_logging
            else None,
            endpoints=endpoints,
            health=health,
            excluded=PathFilter(list(exclude_paths)),
        )

    if hasattr(app, "build_middleware_stack"):
        # Starlette/FastAPI: become the outermost layer, outside ServerErrorMiddleware, so the
        # 500 it sends for an unhandled exception still carries the request id and is counted.
        build = app.build_middleware_stack
        setattr(app, "build_middleware_stack", lambda: wrap(build()))  # noqa: B010
        if getattr(app, "middleware_stack", None) is not None:
            setattr(app, "middleware_stack", None)  # noqa: B010  rebuilt with us on next call
        setattr(app, _MARK, service)
        return app
    wrapped = wrap(cast(ASGIApp, app))
    setattr(wrapped, _MARK, service)
    return wrapped  # type: ignore[return-value]


def _as_check(check: HealthCheck | Callable[[], Any]) -> HealthCheck:
    if isinstance(check, HealthCheck):
        return check
    if callable(check):
        return FunctionCheck(check)
    raise TypeError(
        f"instrument(checks=...): expected a HealthCheck or a callable, got {type(check).__name__}"
    )
