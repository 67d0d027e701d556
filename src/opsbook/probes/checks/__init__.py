"""Checks: what one probe attempt does, for each kind of probe.

:func:`run_check` is the one entry point. It bounds the whole attempt (name resolution, connect,
TLS, request, body) by the probe's timeout and never raises: every failure, from a refused
connection to a body that is not JSON, is a :class:`CheckResult` with a reason for users, and no
reason ever holds a password from a URL. Only cancellation propagates, so the prober can stop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

from opsbook.probes.checks._common import describe_error, failure, format_seconds
from opsbook.probes.checks.dns import check_dns
from opsbook.probes.checks.http import check_http
from opsbook.probes.checks.postgres import check_postgres
from opsbook.probes.checks.redis import check_redis
from opsbook.probes.checks.tcp import check_tcp
from opsbook.probes.results import CheckResult
from opsbook.probes.specs import Check, DnsCheck, HttpCheck, PostgresCheck, RedisCheck, TcpCheck
from opsbook.store.urls import redact

__all__ = ["run_check"]

logger = logging.getLogger("opsbook.probes.checks")
_perf_counter = time.perf_counter


async def run_check(check: Check, timeout_s: float) -> CheckResult:
    """One attempt of ``check``, all of it within ``timeout_s`` seconds. Never raises except
    :class:`asyncio.CancelledError`."""
    started = _perf_counter()
    deadline = asyncio.timeout(timeout_s)
    try:
        async with deadline:
            result = await _dispatch(check, timeout_s)
    except TimeoutError:
        if deadline.expired():
            return _timed_out(started, timeout_s)
        # A library's own timeout that fired before ours.
        result = failure(started, "timed out")
    except Exception as exc:
        # A bug in a check must not stop the prober; the reason still tells users something.
        logger.exception("the %s check of %s crashed", check.kind, check.target)
        result = failure(started, f"the check failed unexpectedly: {describe_error(exc)}")
    else:
        if deadline.expired():
            return _timed_out(started, timeout_s)  # the check outlived its deadline anyway
    if result.error is not None:
        result = _without_secrets(result, check)
    return result


async def _dispatch(check: Check, timeout_s: float) -> CheckResult:
    if isinstance(check, HttpCheck):
        return await check_http(check)
    if isinstance(check, TcpCheck):
        return await check_tcp(check)
    if isinstance(check, PostgresCheck):
        return await check_postgres(check, timeout_s)
    if isinstance(check, RedisCheck):
        return await check_redis(check)
    if isinstance(check, DnsCheck):
        return await check_dns(check)
    raise TypeError(f"unknown check {check!r}")  # pragma: no cover - exhaustive over Check


def _timed_out(started: float, timeout_s: float) -> CheckResult:
    return failure(started, f"timed out after {format_seconds(timeout_s)}")


def _without_secrets(result: CheckResult, check: Check) -> CheckResult:
    """The last line of defense: no library message may carry the URL's password out."""
    url = getattr(check, "url", None)
    if not isinstance(url, str) or result.error is None:
        return result
    error = redact(result.error, url)
    return result if error == result.error else replace(result, error=error)
