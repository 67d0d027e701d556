"""What every check shares: results with reasons, human text for socket errors, conditions.

Checks turn every failure into a :class:`CheckResult` with a reason written for users; these
helpers keep those reasons uniform ("connection refused", "TLS certificate verification failed:
self-signed certificate") and free of credentials.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import time
from datetime import timedelta

from opsbook.config import format_duration
from opsbook.probes.conditions import Condition, Observation, Outcome, evaluate
from opsbook.probes.results import CheckResult

_perf_counter = time.perf_counter

# Short words for the errno values a probe meets; everything else uses os.strerror().
_ERRNO_TEXT = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by peer",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network is unreachable",
    errno.ETIMEDOUT: "connection timed out",
    errno.EPIPE: "connection closed by peer (broken pipe)",
    errno.ECONNABORTED: "connection aborted",
    errno.EADDRNOTAVAIL: "cannot assign the requested address",
}

_CONNECTION_ERRORS: tuple[tuple[type[OSError], str], ...] = (
    (ConnectionResetError, _ERRNO_TEXT[errno.ECONNRESET]),
    (ConnectionRefusedError, _ERRNO_TEXT[errno.ECONNREFUSED]),
    (ConnectionAbortedError, _ERRNO_TEXT[errno.ECONNABORTED]),
    (BrokenPipeError, _ERRNO_TEXT[errno.EPIPE]),
)


def failure(
    started: float,
    reason: str,
    *,
    status_code: int | None = None,
    cert_expiry_unix_s: float | None = None,
) -> CheckResult:
    """A failed attempt that started at ``started`` (a ``perf_counter()`` value)."""
    return CheckResult(
        success=False,
        duration_s=_perf_counter() - started,
        error=reason,
        status_code=status_code,
        cert_expiry_unix_s=cert_expiry_unix_s,
    )


def format_seconds(seconds: float) -> str:
    """``5.0`` -> ``5s``, ``0.25`` -> ``250ms``; sub-millisecond values as plain seconds."""
    try:
        return format_duration(timedelta(seconds=seconds))
    except (ValueError, OverflowError):
        return f"{seconds:g}s"


def describe_error(exc: BaseException, host: str | None = None) -> str:
    """One line for users about a connection-level error (socket, DNS, TLS)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or exc.reason or "unknown reason"
        return f"TLS certificate verification failed: {detail}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {_ssl_reason(exc)}"
    if isinstance(exc, socket.gaierror):
        name = f" {host}" if host else ""
        return f"cannot resolve{name}: {exc.strerror or exc}"
    if isinstance(exc, OSError):
        if exc.errno is not None:
            return _ERRNO_TEXT.get(exc.errno) or os.strerror(exc.errno).lower()
        # asyncio raises some without an errno (a reset during a TLS handshake).
        for kind, text in _CONNECTION_ERRORS:
            if isinstance(exc, kind):
                return text
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _ssl_reason(exc: ssl.SSLError) -> str:
    # exc.reason is OpenSSL's short code ("WRONG_VERSION_NUMBER"); read better in words.
    if exc.reason:
        return exc.reason.lower().replace("_", " ")
    text = str(exc).strip()
    return text.splitlines()[0] if text else "unknown error"


def check_conditions(conditions: tuple[Condition, ...], observation: Observation) -> str | None:
    """None when every condition holds, else the failing ones: ``[STATUS] == 200 failed (503)``."""
    failed: list[Outcome] | None = None
    for condition in conditions:
        outcome = evaluate(condition, observation)
        if not outcome.success:
            if failed is None:
                failed = []
            failed.append(outcome)
    if failed is None:
        return None
    return "; ".join(f"{o.condition} failed ({o.observed})" for o in failed)
