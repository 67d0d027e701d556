"""HTTP metrics in the Prometheus data model, and their exposition.

Metric objects come from prometheus-client so that user metrics registered in the same registry
are exposed next to ours and so that several worker processes can share one view through
`PROMETHEUS_MULTIPROC_DIR`. The hot path caches labelled children: `labels()` costs a lock and
a dict walk on every call, a plain dict lookup does not.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

# Bucket bounds in seconds. Every SLO latency threshold the runbooks use (100 ms, 250 ms, 500 ms,
# 1 s, 2.5 s, 5 s, 10 s) is a bound, so "share of requests faster than X" is exact, not estimated.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)

# One label value for every path no route matched, so a scanner probing /wp-admin, /.env, ...
# adds one series, not thousands.
UNMATCHED_ROUTE = "__unmatched__"


def multiprocess_dir() -> str | None:
    """The shared metrics folder of a multi-worker deployment, when one is configured."""
    # The lower-case name is the one older prometheus-client releases read.
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get(
        "prometheus_multiproc_dir"  # noqa: SIM112
    )


@dataclass(eq=False)
class HttpMetrics:
    """The request metrics one instrumented app records."""

    requests: Counter
    duration: Histogram
    in_progress: Gauge
    exceptions: Counter
    buckets: tuple[float, ...]
    _request_children: dict[tuple[str, str, str], object] = field(default_factory=dict)
    _duration_children: dict[tuple[str, str], object] = field(default_factory=dict)
    _progress_children: dict[str, object] = field(default_factory=dict)

    def started(self, method: str) -> None:
        child = self._progress_children.get(method)
        if child is None:
            child = self._progress_children[method] = self.in_progress.labels(method)
        child.inc()  # type: ignore[attr-defined]

    def finished(
        self, method: str, route: str, status: int, seconds: float, exception: str | None
    ) -> None:
        self._progress_children[method].dec()  # type: ignore[attr-defined]
        key = (method, route, str(status))
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children[key] = self.requests.labels(*key)
        counter.inc()  # type: ignore[attr-defined]
        hkey = (method, route)
        histogram = self._duration_children.get(hkey)
        if histogram is None:
            histogram = self._duration_children[hkey] = self.duration.labels(*hkey)
        histogram.observe(seconds)  # type: ignore[attr-defined]
        if exception is not None:
            self.exceptions.labels(route, exception).inc()


_metrics_lock = threading.Lock()
_per_registry: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)
T = TypeVar("T")


def once_per_registry(
    registry: CollectorRegistry | None, key: str, create: Callable[[CollectorRegistry], T]
) -> T:
    """The metric (or metric set) `key` of `registry`, created on first use.

    Instrumenting a second app in the same process (tests, several apps behind one server)
    reuses the metrics instead of failing on duplicate names.
    """
    registry = REGISTRY if registry is None else registry
    with _metrics_lock:
        made = _per_registry.setdefault(registry, {})
        if key not in made:
            made[key] = create(registry)
        return cast(T, made[key])


def http_metrics(
    registry: CollectorRegistry | None = None, buckets: Sequence[float] = DEFAULT_BUCKETS
) -> HttpMetrics:
    """The HTTP metrics of `registry`, created on first use."""
    bounds = _validated_buckets(buckets)

    def create(target: CollectorRegistry) -> HttpMetrics:
        return HttpMetrics(
            requests=Counter(
                "http_requests_total",
                "HTTP requests handled, by method, route template and status code.",
                ("method", "route", "status"),
                registry=target,
            ),
            duration=Histogram(
                "http_request_duration_seconds",
                "Time from receiving an HTTP request to sending the last byte of its response.",
                ("method", "route"),
                buckets=bounds,
                registry=target,
            ),
            in_progress=Gauge(
                "http_requests_in_progress",
                "HTTP requests being handled right now.",
                ("method",),
                registry=target,
                multiprocess_mode="livesum",
            ),
            exceptions=Counter(
                "http_exceptions_total",
                "Unhandled exceptions raised while handling an HTTP request, by route and type.",
                ("route", "type"),
                registry=target,
            ),
            buckets=bounds,
        )

    metrics = once_per_registry(registry, "http", create)
    if metrics.buckets != bounds:
        raise ValueError(
            "http_request_duration_seconds is already registered in this registry with "
            f"buckets {list(metrics.buckets)}; instrument() was called again with "
            f"{list(bounds)}. Use the same buckets, or pass a separate registry=."
        )
    return metrics


def _validated_buckets(buckets: Sequence[float]) -> tuple[float, ...]:
    bounds = tuple(float(b) for b in buckets if b != float("inf"))
    if not bounds:
        raise ValueError("buckets must contain at least one finite upper bound")
    if any(b <= 0 for b in bounds) or list(bounds) != sorted(set(bounds)):
        raise ValueError(f"buckets must be positive and strictly increasing (got {list(buckets)})")
    return bounds


def record_service_info(
    registry: CollectorRegistry | None, service: str, version: str, environment: str
) -> None:
    """`service_info{service,version,environment} 1`, the join key for dashboards and deploys."""
    gauge = once_per_registry(
        registry,
        "service_info",
        lambda target: Gauge(
            "service_info",
            "The service this process runs: name, version and environment.",
            ("service", "version", "environment"),
            registry=target,
            multiprocess_mode="max",
        ),
    )
    gauge.labels(service, version, environment).set(1)


def render_metrics(registry: CollectorRegistry | None, accept: str) -> tuple[bytes, str]:
    """The exposition body and its content type: OpenMetrics when `accept` asks for it."""
    encoder, content_type = choose_encoder(accept)
    if multiprocess_dir():
        # Each scrape merges the files every worker wrote; no worker's in-memory view is whole.
        merged = CollectorRegistry()
        MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return encoder(merged), content_type
    return encoder(REGISTRY if registry is None else registry), content_type
