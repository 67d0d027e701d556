"""Slow-query logging and `db_query_duration_seconds` for a SQLAlchemy engine.

Statements are logged truncated and with whitespace folded; bound parameters never are (they
are where passwords, e-mail addresses and tokens live). Each line carries the request id of the
request that ran the query.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

from opsbook.instrument.metrics import once_per_registry
from opsbook.instrument.request_id import request_id_var

QUERY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_START_KEY = "opsbook_query_start"
_WHITESPACE = re.compile(r"\s+")
_FIRST_WORD = re.compile(r"\s*(?:/\*.*?\*/\s*)*([A-Za-z]+)", re.DOTALL)
_OPERATIONS = frozenset(
    {
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "WITH",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "CREATE",
        "ALTER",
        "DROP",
        "TRUNCATE",
        "COPY",
        "SET",
        "SHOW",
        "EXPLAIN",
        "PRAGMA",
        "MERGE",
        "UPSERT",
    }
)

logger = logging.getLogger("opsbook.sql")


def _histogram(registry: CollectorRegistry | None) -> Histogram:
    return once_per_registry(
        registry,
        "db_query_duration",
        lambda target: Histogram(
            "db_query_duration_seconds",
            "Time spent executing SQL statements, by operation (SELECT, INSERT, ...).",
            ("operation",),
            buckets=QUERY_BUCKETS,
            registry=target,
        ),
    )


def operation_of(statement: str) -> str:
    """The statement's verb, from a fixed set so the label cannot explode."""
    match = _FIRST_WORD.match(statement)
    verb = match.group(1).upper() if match else ""
    return verb if verb in _OPERATIONS else "OTHER"


def shorten(statement: str, max_chars: int) -> str:
    folded = _WHITESPACE.sub(" ", statement).strip()
    return folded if len(folded) <= max_chars else folded[: max_chars - 1] + "…"


def instrument_sqlalchemy(
    engine: Any,
    *,
    threshold_ms: float = 500.0,
    statement_max_chars: int = 1000,
    registry: CollectorRegistry | None = None,
) -> None:
    """Record every statement's duration; log those slower than `threshold_ms` at WARNING.

    `engine` is a SQLAlchemy `Engine` or `AsyncEngine`.
    """
    from sqlalchemy import event

    if threshold_ms < 0:
        raise ValueError(f"threshold_ms must not be negative (got {threshold_ms})")
    sync_engine = getattr(engine, "sync_engine", engine)
    if getattr(sync_engine, "_opsbook_sql_instrumented", False):
        return
    histogram = _histogram(registry)
    children: dict[str, Any] = {}

    def before(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        conn.info.setdefault(_START_KEY, []).append(time.perf_counter())

    def after(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        starts = conn.info.get(_START_KEY)
        if not starts:
            return
        seconds = time.perf_counter() - starts.pop()
        operation = operation_of(statement)
        child = children.get(operation)
        if child is None:
            child = children[operation] = histogram.labels(operation)
        child.observe(seconds)
        duration_ms = seconds * 1000
        if duration_ms >= threshold_ms:
            logger.warning(
                "slow query",
                extra={
                    "statement": shorten(statement, statement_max_chars),
                    "operation": operation,
                    "duration_ms": round(duration_ms, 3),
                    "threshold_ms": threshold_ms,
                    "request_id": request_id_var.get(),
                    "executemany": many,
                },
            )

    def failed(context: Any) -> None:
        # A failed statement never reaches after_cursor_execute; drop its start time.
        starts = context.connection.info.get(_START_KEY) if context.connection is not None else None
        if starts:
            starts.pop()

    event.listen(sync_engine, "before_cursor_execute", before)
    event.listen(sync_engine, "after_cursor_execute", after)
    event.listen(sync_engine, "handle_error", failed)
    sync_engine._opsbook_sql_instrumented = True
