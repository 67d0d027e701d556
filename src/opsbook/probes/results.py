"""What one probe attempt found. Pure data: the checks produce it, the prober stores it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

HealthStatus = Literal["pass", "warn", "fail"]

HEALTH_STATUS_VALUES: dict[HealthStatus, float] = {"pass": 1.0, "warn": 0.5, "fail": 0.0}
"""``opsbook_health_check_status``: 1 pass, 0.5 warn, 0 fail."""


@dataclass(frozen=True, slots=True)
class ComponentCheck:
    """One entry of an ``application/health+json`` body's ``checks``: ``database:responseTime``.

    ``component`` is the ``componentId`` when the entry has one, else the part of the key before
    ``:``; ``measurement`` the part after it (``""`` when the key has no ``:``).
    """

    component: str
    measurement: str
    status: HealthStatus
    observed_value: float | None = None
    """Numeric ``observedValue`` only; text values are left out of metrics."""
    observed_unit: str | None = None
    output: str | None = None


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one attempt. Checks never raise: every failure is a result with a reason.

    ``error`` says why a failed attempt failed, written for users ("connection refused",
    "timed out after 5s", "[STATUS] == 200 failed: 503", "the body is not JSON"); it never holds
    credentials. It is None exactly when ``success`` is true.
    """

    success: bool
    duration_s: float
    """From the start of the attempt to its end (for HTTP: to the end of the body)."""
    error: str | None = None
    status_code: int | None = None
    """HTTP status of the final response (after redirects); None for other kinds or no response."""
    cert_expiry_unix_s: float | None = None
    """``notAfter`` of the peer's certificate, in Unix seconds, for TLS connections."""
    health_status: HealthStatus | None = None
    """The top-level ``status`` of an ``application/health+json`` body."""
    components: tuple[ComponentCheck, ...] = ()
    """The ``checks`` of an ``application/health+json`` body, in the body's order."""

    def __post_init__(self) -> None:
        if self.success != (self.error is None):
            raise ValueError("a CheckResult has an error exactly when it failed")
