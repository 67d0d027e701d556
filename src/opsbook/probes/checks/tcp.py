"""The TCP check: connect (and complete a TLS handshake with ``tls``), then close.

Conditions may use ``[CONNECTED]``, ``[RESPONSE_TIME]`` and ``[CERT_EXPIRY]``. A connection the
peer refuses (or cannot be routed to) is an observation, ``[CONNECTED] == false``, so "this port
must be closed" is a check that can pass. A failed TLS handshake is always a failure: the port is
open but does not serve what the check asked for.
"""

from __future__ import annotations

import asyncio
import ssl
import time

from opsbook.probes.checks._common import check_conditions, describe_error, failure
from opsbook.probes.checks.tls import client_context, peer_not_after
from opsbook.probes.conditions import Observation
from opsbook.probes.results import CheckResult
from opsbook.probes.specs import TcpCheck

_perf_counter = time.perf_counter


async def check_tcp(check: TcpCheck) -> CheckResult:
    started = _perf_counter()
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await loop.create_connection(
            asyncio.Protocol,
            check.host,
            check.port,
            ssl=client_context(check.verify_tls) if check.tls else None,
            server_hostname=check.host if check.tls else None,
        )
    except ssl.SSLError as exc:
        return failure(started, describe_error(exc, check.host))
    except OSError as exc:
        return _not_connected(check, started, describe_error(exc, check.host))
    duration = _perf_counter() - started
    not_after = peer_not_after(transport.get_extra_info("ssl_object")) if check.tls else None
    transport.abort()  # no graceful TLS close: it waits for the peer's close_notify
    return _connected(check, duration, not_after)


def _connected(check: TcpCheck, duration_s: float, not_after: float | None) -> CheckResult:
    error = None
    if check.conditions:
        observation = Observation(
            response_time_ms=duration_s * 1000.0,
            cert_expiry_s=not_after - time.time() if not_after is not None else None,
            connected=True,
        )
        error = check_conditions(check.conditions, observation)
    return CheckResult(
        success=error is None, duration_s=duration_s, error=error, cert_expiry_unix_s=not_after
    )


def _not_connected(check: TcpCheck, started: float, reason: str) -> CheckResult:
    if not check.conditions:
        return failure(started, reason)
    error = check_conditions(check.conditions, Observation(connected=False))
    if error is None:
        return CheckResult(success=True, duration_s=_perf_counter() - started)
    return failure(started, f"{error}; {reason}")
