"""The PostgreSQL check: connect with psycopg 3, run the check's query, fetch a row, close.

libpq's errors are several lines naming every address it tried; users need the reason only
(``database "nope" does not exist``, ``connection refused``), so they are summarized here.
"""

from __future__ import annotations

import math
import re
import time

import psycopg

from opsbook.probes.checks._common import failure
from opsbook.probes.results import CheckResult
from opsbook.probes.specs import PostgresCheck

_perf_counter = time.perf_counter

_SCHEMES = ("postgresql", "postgres")
# libpq: 'connection to server at "127.0.0.1", port 5432 failed: FATAL:  ...'
_SERVER_PREFIX = re.compile(r"^(?:connection failed: )?connection to server (?:at|on) .*? failed: ")
_SEVERITY_PREFIX = re.compile(r"^(?:FATAL|ERROR|PANIC):\s+")


async def check_postgres(check: PostgresCheck, timeout_s: float) -> CheckResult:
    started = _perf_counter()
    conninfo = libpq_url(check.url)
    if conninfo is None:
        return failure(started, "the URL must start with postgresql:// or postgres://")
    try:
        # connect_timeout only backs up the caller's deadline, which ends the attempt first.
        connection = await psycopg.AsyncConnection.connect(
            conninfo, autocommit=True, connect_timeout=math.ceil(timeout_s) + 1
        )
    except psycopg.Error as exc:
        return failure(started, summarize_error(exc))
    try:
        cursor = await connection.execute(check.query)
        if cursor.description is not None:  # statements without rows have nothing to fetch
            await cursor.fetchone()
    except psycopg.Error as exc:
        return failure(started, f"the query failed: {summarize_error(exc)}")
    finally:
        await connection.close()
    return CheckResult(success=True, duration_s=_perf_counter() - started)


def libpq_url(url: str) -> str | None:
    """``url`` as libpq reads it: SQLAlchemy's ``postgresql+psycopg://`` loses its driver."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return None
    base = scheme.partition("+")[0].lower()
    return f"{base}://{rest}" if base in _SCHEMES else None


def summarize_error(exc: psycopg.Error) -> str:
    """One line: the server's message, or libpq's reason per address tried."""
    primary = exc.diag.message_primary
    if primary:
        return primary
    reasons: list[str] = []
    for line in str(exc).splitlines():
        if not line.strip() or line[0].isspace():
            continue  # libpq's hints ("\tIs the server running on that host...?")
        reason = _SEVERITY_PREFIX.sub("", _SERVER_PREFIX.sub("", line.strip()))
        reason = _lower_first(reason)
        if reason not in reasons:
            reasons.append(reason)
    return "; ".join(reasons) or type(exc).__name__


def _lower_first(text: str) -> str:
    """ "Connection refused" -> "connection refused"; "SSL error" stays."""
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text
