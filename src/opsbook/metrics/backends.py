"""The two :class:`~opsbook.metrics.query.MetricsBackend` implementations.

- :class:`EmbeddedBackend`: opsbook's own PromQL engine over a local sample store (DuckDB by
  default). The engine is CPU work, so queries run in worker threads, a few at a time.
- :class:`PrometheusBackend`: every query is handed to a server that speaks Prometheus's HTTP
  query API (Prometheus, VictoriaMetrics, Thanos, Mimir): the scale-out path.

Rules, SLOs and the query API talk to either through the same five calls.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

import httpx

from opsbook.metrics.model import Labels, labels_from_mapping
from opsbook.metrics.promjson import decode_error, decode_value
from opsbook.metrics.promql import Engine, EngineOptions, parse_series_selector
from opsbook.metrics.query import BackendUnavailable, QueryError, QueryResult
from opsbook.metrics.scrape.targets import redact_url
from opsbook.metrics.store_api import MatcherSets, SampleStore


class EmbeddedBackend:
    """PromQL over a local :class:`~opsbook.metrics.store_api.SampleStore`."""

    name = "embedded"

    def __init__(
        self,
        store: SampleStore,
        options: EngineOptions | None = None,
        *,
        max_concurrent_queries: int = 4,
    ) -> None:
        self.store = store
        self.options = options or EngineOptions()
        # Queries hold the GIL for most of their work: more threads than this only add latency.
        self._slots = asyncio.Semaphore(max_concurrent_queries)

    def _engine(self, timeout_s: float | None) -> Engine:
        options = self.options
        if timeout_s is not None and timeout_s < options.timeout_s:
            options = dataclasses.replace(options, timeout_s=timeout_s)
        return Engine(self.store, options)

    async def instant_query(
        self, expr: str, time_ms: int, *, timeout_s: float | None = None
    ) -> QueryResult:
        engine = self._engine(timeout_s)
        async with self._slots:
            return await asyncio.to_thread(engine.instant_query, expr, time_ms)

    async def range_query(
        self,
        expr: str,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        *,
        timeout_s: float | None = None,
    ) -> QueryResult:
        engine = self._engine(timeout_s)
        async with self._slots:
            return await asyncio.to_thread(engine.range_query, expr, start_ms, end_ms, step_ms)

    async def series(self, selectors: Sequence[str], start_ms: int, end_ms: int) -> list[Labels]:
        matcher_sets = _matcher_sets(selectors)
        return await asyncio.to_thread(self.store.series, matcher_sets, start_ms, end_ms)

    async def label_names(self, selectors: Sequence[str], start_ms: int, end_ms: int) -> list[str]:
        matcher_sets = _matcher_sets(selectors)
        return await asyncio.to_thread(self.store.label_names, matcher_sets, start_ms, end_ms)

    async def label_values(
        self, name: str, selectors: Sequence[str], start_ms: int, end_ms: int
    ) -> list[str]:
        matcher_sets = _matcher_sets(selectors)
        return await asyncio.to_thread(
            self.store.label_values, name, matcher_sets, start_ms, end_ms
        )

    async def close(self) -> None:
        await asyncio.to_thread(self.store.close)


def _matcher_sets(selectors: Sequence[str]) -> MatcherSets:
    return [parse_series_selector(selector) for selector in selectors]


def _seconds(t_ms: int) -> str:
    return f"{t_ms / 1000:.3f}"


class PrometheusBackend:
    """Queries delegated to a Prometheus-compatible HTTP API at ``url``."""

    name = "prometheus"

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 120.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        # The HTTP timeout leaves the server time to answer with its own timeout error first.
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout_s + 5.0))
        self._owns_client = client is None

    async def _call(
        self, path: str, params: list[tuple[str, str]], *, method: str = "POST"
    ) -> dict[str, Any]:
        """The success envelope of one API call; error envelopes become :class:`QueryError`."""
        url = f"{self.url}{path}"
        form = _form(params)
        try:
            # POST with a form body: long queries and many match[] do not fit in a URL.
            if method == "POST":
                response = await self._client.post(url, data=form)
            else:
                response = await self._client.get(url, params=form)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"cannot reach the Prometheus API at {redact_url(self.url)}: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise BackendUnavailable(
                f"the Prometheus API at {redact_url(self.url)} answered {path} with HTTP "
                f"{response.status_code} and no Prometheus JSON; is this the right URL?"
            )
        if body.get("status") != "success":
            raise decode_error(body, response.status_code)
        return body

    async def _query(self, path: str, params: list[tuple[str, str]]) -> QueryResult:
        body = await self._call(path, params)
        data = body.get("data")
        if not isinstance(data, dict):
            raise QueryError(f"the Prometheus API answered {path} without a result")
        return QueryResult(
            decode_value(data),
            [str(w) for w in body.get("warnings") or []],
            [str(i) for i in body.get("infos") or []],
        )

    def _timeout(self, timeout_s: float | None) -> str:
        limit = self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s)
        return f"{limit:g}s"

    async def instant_query(
        self, expr: str, time_ms: int, *, timeout_s: float | None = None
    ) -> QueryResult:
        params = [
            ("query", expr),
            ("time", _seconds(time_ms)),
            ("timeout", self._timeout(timeout_s)),
        ]
        return await self._query("/api/v1/query", params)

    async def range_query(
        self,
        expr: str,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        *,
        timeout_s: float | None = None,
    ) -> QueryResult:
        params = [
            ("query", expr),
            ("start", _seconds(start_ms)),
            ("end", _seconds(end_ms)),
            ("step", f"{step_ms / 1000:g}"),
            ("timeout", self._timeout(timeout_s)),
        ]
        return await self._query("/api/v1/query_range", params)

    def _range(self, selectors: Sequence[str], start_ms: int, end_ms: int) -> list[tuple[str, str]]:
        params = [("match[]", selector) for selector in selectors]
        return [*params, ("start", _seconds(start_ms)), ("end", _seconds(end_ms))]

    async def series(self, selectors: Sequence[str], start_ms: int, end_ms: int) -> list[Labels]:
        body = await self._call("/api/v1/series", self._range(selectors, start_ms, end_ms))
        return sorted(labels_from_mapping(item) for item in body.get("data") or [])

    async def label_names(self, selectors: Sequence[str], start_ms: int, end_ms: int) -> list[str]:
        body = await self._call("/api/v1/labels", self._range(selectors, start_ms, end_ms))
        return sorted(str(name) for name in body.get("data") or [])

    async def label_values(
        self, name: str, selectors: Sequence[str], start_ms: int, end_ms: int
    ) -> list[str]:
        # Prometheus serves label values on GET only.
        path = f"/api/v1/label/{name}/values"
        body = await self._call(path, self._range(selectors, start_ms, end_ms), method="GET")
        return sorted(str(value) for value in body.get("data") or [])

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _form(params: list[tuple[str, str]]) -> dict[str, list[str]]:
    form: dict[str, list[str]] = {}
    for key, value in params:
        form.setdefault(key, []).append(value)
    return form
