"""The Prometheus-compatible query API: ``/api/v1/query``, ``query_range``, ``series``, labels.

Same paths, parameters, JSON shapes, status codes and error format as Prometheus, so Grafana (and
any other Prometheus client) can use opsbook as a Prometheus data source. Parameters come from
the query string or, for POST, from a form body, as Prometheus accepts both; they are parsed here
rather than by FastAPI so a bad parameter answers with Prometheus's ``bad_data`` error instead of
FastAPI's validation error.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request, Response

from opsbook import __version__
from opsbook.config import format_duration
from opsbook.metrics.model import is_valid_label_name
from opsbook.metrics.promjson import (
    encode_result,
    error,
    parse_duration,
    parse_time,
    success,
)
from opsbook.metrics.query import BadQueryRequest, MetricsBackend, QueryError, QuerySyntaxError
from opsbook.metrics.scrape import TargetStatus

MAX_POINTS_PER_SERIES = 11_000
"""Prometheus's limit on the steps of one range query."""

# Without start/end, series and label lookups cover all time, as in Prometheus.
MIN_TIME_MS = -(2**62)
MAX_TIME_MS = 2**62

Params = dict[str, list[str]]


async def request_params(request: Request) -> Params:
    """Query-string parameters, plus the form body of a POST, repeated keys kept in order."""
    params: Params = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip() != "application/x-www-form-urlencoded":
            raise BadQueryRequest(
                f"POST bodies must be application/x-www-form-urlencoded, not {content_type!r}"
            )
        body = (await request.body()).decode("utf-8", errors="replace")
        for key, value in parse_qsl(body, keep_blank_values=True):
            params.setdefault(key, []).append(value)
    return params


def _one(params: Params, name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def json_response(body: dict[str, Any], status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def error_response(exc: QueryError) -> Response:
    message = exc.message
    if isinstance(exc, QuerySyntaxError):
        message = f'invalid parameter "query": {message}'
    return json_response(error(exc.kind, message), exc.http_status)


def _param_docs(*names: tuple[str, str, bool]) -> dict[str, Any]:
    """OpenAPI text for parameters parsed by hand (query string or form body)."""
    return {
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": required,
                "description": description,
                "schema": {"type": "array", "items": {"type": "string"}}
                if name.endswith("[]")
                else {"type": "string"},
            }
            for name, description, required in names
        ]
    }


Handler = Callable[[Params], Awaitable[Response]]


def _provider(
    backend: MetricsBackend | Callable[[], MetricsBackend],
) -> Callable[[], MetricsBackend]:
    if isinstance(backend, MetricsBackend):
        fixed = backend
        return lambda: fixed
    return backend


def query_api_router(
    backend: MetricsBackend | Callable[[], MetricsBackend],
    *,
    now_ms: Callable[[], int] | None = None,
) -> APIRouter:
    """An APIRouter serving Prometheus's query API over ``backend``.

    ``backend`` may be a function returning it, for apps whose backend starts in their lifespan.
    ``now_ms`` is the clock for queries without ``time``/``end`` (tests pass a fixed one).
    """
    clock = now_ms or (lambda: round(time.time() * 1000))
    current = _provider(backend)
    router = APIRouter(prefix="/api/v1", tags=["Prometheus query API"])

    def route(
        path: str, methods: Sequence[str], summary: str, docs: dict[str, Any]
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            async def endpoint(request: Request) -> Response:
                try:
                    return await handler(await request_params(request))
                except QueryError as exc:
                    return error_response(exc)

            endpoint.__name__ = handler.__name__
            # One route per method: OpenAPI needs a distinct operation id for each.
            for method in methods:
                router.add_api_route(
                    path,
                    endpoint,
                    methods=[method],
                    summary=summary,
                    openapi_extra=docs,
                    response_class=Response,
                    operation_id=f"{handler.__name__}_{method.lower()}",
                )
            return handler

        return register

    def timeout_s(params: Params) -> float | None:
        text = _one(params, "timeout")
        return None if text is None else parse_duration(text, "timeout") / 1000

    def time_range(params: Params) -> tuple[int, int]:
        start_text, end_text = _one(params, "start"), _one(params, "end")
        start = MIN_TIME_MS if start_text is None else parse_time(start_text, "start")
        end = MAX_TIME_MS if end_text is None else parse_time(end_text, "end")
        if end < start:
            raise BadQueryRequest("end timestamp must not be before start time")
        return start, end

    @route(
        "/query",
        ("GET", "POST"),
        "Evaluate an instant query",
        _param_docs(
            ("query", "PromQL expression", True),
            ("time", "Evaluation time: RFC 3339 or Unix seconds; default now", False),
            ("timeout", "Evaluation timeout, e.g. 30s; at most the server's limit", False),
        ),
    )
    async def instant_query(params: Params) -> Response:
        expr = _one(params, "query") or ""
        time_text = _one(params, "time")
        at = clock() if time_text is None else parse_time(time_text, "time")
        result = await current().instant_query(expr, at, timeout_s=timeout_s(params))
        return json_response(encode_result(result))

    @route(
        "/query_range",
        ("GET", "POST"),
        "Evaluate a range query",
        _param_docs(
            ("query", "PromQL expression", True),
            ("start", "Start: RFC 3339 or Unix seconds", True),
            ("end", "End: RFC 3339 or Unix seconds", True),
            ("step", "Resolution: a duration (15s) or float seconds", True),
            ("timeout", "Evaluation timeout, e.g. 30s; at most the server's limit", False),
        ),
    )
    async def range_query(params: Params) -> Response:
        expr = _one(params, "query") or ""
        for name in ("start", "end", "step"):
            if _one(params, name) is None:
                raise BadQueryRequest(f'invalid parameter "{name}": missing')
        start = parse_time(params["start"][0], "start")
        end = parse_time(params["end"][0], "end")
        if end < start:
            raise BadQueryRequest("end timestamp must not be before start time")
        step = parse_duration(params["step"][0], "step")
        if step <= 0:
            raise BadQueryRequest(
                "zero or negative query resolution step widths are not accepted. "
                "Try a positive integer"
            )
        if (end - start) // step >= MAX_POINTS_PER_SERIES:
            raise BadQueryRequest(
                "exceeded maximum resolution of 11,000 points per timeseries. "
                "Try decreasing the query resolution (?step=XX)"
            )
        result = await current().range_query(expr, start, end, step, timeout_s=timeout_s(params))
        return json_response(encode_result(result))

    selector_docs = (
        ("match[]", "Series selector; repeat for several (any may match)", False),
        ("start", "Start: RFC 3339 or Unix seconds; default: all time", False),
        ("end", "End: RFC 3339 or Unix seconds; default: all time", False),
    )

    @route("/series", ("GET", "POST"), "Find series by label matchers", _param_docs(*selector_docs))
    async def series(params: Params) -> Response:
        selectors = params.get("match[]", [])
        if not selectors:
            raise BadQueryRequest("no match[] parameter provided")
        start, end = time_range(params)
        found = await current().series(selectors, start, end)
        return json_response(success([dict(labels) for labels in found]))

    @route("/labels", ("GET", "POST"), "List label names", _param_docs(*selector_docs))
    async def labels(params: Params) -> Response:
        start, end = time_range(params)
        names = await current().label_names(params.get("match[]", []), start, end)
        return json_response(success(names))

    async def label_values(name: str, request: Request) -> Response:
        try:
            if not is_valid_label_name(name):
                raise BadQueryRequest(f'invalid label name: "{name}"')
            params = await request_params(request)
            start, end = time_range(params)
            values = await current().label_values(name, params.get("match[]", []), start, end)
        except QueryError as exc:
            return error_response(exc)
        return json_response(success(values))

    router.add_api_route(
        "/label/{name}/values",
        label_values,
        methods=["GET"],
        summary="List the values of a label",
        openapi_extra=_param_docs(*selector_docs),
        response_class=Response,
    )

    async def buildinfo() -> Response:
        # Grafana reads this to tell which Prometheus flavour it talks to.
        return json_response(
            success(
                {
                    "version": __version__,
                    "revision": "",
                    "branch": "",
                    "buildUser": "",
                    "buildDate": "",
                    "goVersion": "",
                    "application": "opsbook",
                }
            )
        )

    router.add_api_route(
        "/status/buildinfo", buildinfo, methods=["GET"], summary="Version of this server"
    )
    return router


def _rfc3339(t_ms: int | None) -> str:
    if t_ms is None:
        return "0001-01-01T00:00:00Z"  # what Prometheus shows for "never scraped"
    return (
        datetime.fromtimestamp(t_ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def targets_router(statuses: Callable[[], Sequence[TargetStatus]]) -> APIRouter:
    """``/api/v1/targets`` in Prometheus's shape: each target's health and last scrape error."""
    router = APIRouter(prefix="/api/v1", tags=["Prometheus query API"])

    @router.get("/targets", summary="Scrape targets and the outcome of their last scrape")
    async def targets(state: str = "any") -> Response:
        active = [
            {
                "discoveredLabels": {"__address__": status.instance, "job": status.job},
                "labels": dict(status.labels),
                "scrapePool": status.job,
                "scrapeUrl": status.url,
                "globalUrl": status.url,
                "lastError": status.last_error or "",
                "lastScrape": _rfc3339(status.last_scrape_ms),
                "lastScrapeDuration": status.last_duration_s or 0.0,
                "lastSamples": status.samples,
                "health": status.health,
                "scrapeInterval": format_duration(status.interval),
                "scrapeTimeout": format_duration(status.timeout),
            }
            for status in statuses()
        ]
        data: dict[str, Any] = {"activeTargets": active, "droppedTargets": []}
        if state == "dropped":
            data["activeTargets"] = []
        return json_response(success(data))

    return router
