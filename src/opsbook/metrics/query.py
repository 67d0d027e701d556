"""Query results, query errors and the :class:`MetricsBackend` interface.

Both backends — ``embedded`` (the DuckDB store + opsbook's PromQL evaluator) and ``prometheus``
(a Prometheus-compatible HTTP API) — answer with these types, so the query API, the rule evaluator
and the SLO engine do not care which one is behind them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from opsbook.metrics.model import Labels


@dataclass(frozen=True, slots=True)
class Scalar:
    t_ms: int
    value: float


@dataclass(frozen=True, slots=True)
class String:
    t_ms: int
    value: str


@dataclass(frozen=True, slots=True)
class Sample:
    """One element of an instant vector."""

    labels: Labels
    t_ms: int
    value: float


@dataclass(frozen=True, slots=True)
class Vector:
    """An instant vector; the order of ``samples`` is the result order (``sort()`` etc.)."""

    samples: list[Sample]


@dataclass(frozen=True, slots=True)
class MatrixSeries:
    labels: Labels
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Matrix:
    """A range-query result or a range vector; series sorted by labels unless said otherwise."""

    series: list[MatrixSeries]


QueryValue = Scalar | String | Vector | Matrix


@dataclass(frozen=True, slots=True)
class QueryResult:
    value: QueryValue
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)


class QueryError(Exception):
    """A query that could not be answered. ``kind`` is Prometheus's ``errorType``."""

    kind = "execution"
    http_status = 422

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class QuerySyntaxError(QueryError):
    """The expression does not parse; ``position`` is the 0-based character offset if known."""

    kind = "bad_data"
    http_status = 400

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class BadQueryRequest(QueryError):
    """Bad parameters around the expression (time, step, matchers)."""

    kind = "bad_data"
    http_status = 400


class QueryTimeout(QueryError):
    kind = "timeout"
    http_status = 503


class QueryTooExpensive(QueryError):
    """The query would load more samples than ``max_samples`` allows."""

    kind = "execution"
    http_status = 422


class BackendUnavailable(QueryError):
    """The backend (e.g. a remote Prometheus) could not be reached."""

    kind = "unavailable"
    http_status = 503


@runtime_checkable
class MetricsBackend(Protocol):
    """Where queries go. Times are milliseconds since the epoch."""

    name: str

    async def instant_query(
        self, expr: str, time_ms: int, *, timeout_s: float | None = None
    ) -> QueryResult:
        """Evaluate ``expr`` at one instant; ``timeout_s`` can only shorten the configured limit."""
        ...

    async def range_query(
        self,
        expr: str,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        *,
        timeout_s: float | None = None,
    ) -> QueryResult: ...

    async def series(
        self, selectors: Sequence[str], start_ms: int, end_ms: int
    ) -> list[Labels]: ...

    async def label_names(
        self, selectors: Sequence[str], start_ms: int, end_ms: int
    ) -> list[str]: ...

    async def label_values(
        self, name: str, selectors: Sequence[str], start_ms: int, end_ms: int
    ) -> list[str]: ...

    async def close(self) -> None: ...
