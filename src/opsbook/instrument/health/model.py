"""The health+json vocabulary: statuses, observations and the report document.

Follows the IETF draft "Health Check Response Format for HTTP APIs" (`application/health+json`):
`pass` / `warn` / `fail`, `checks` keyed `component:measurement`, each an array of observations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["pass", "warn", "fail"]

HEALTH_JSON = "application/health+json"
_SEVERITY: dict[Status, int] = {"pass": 0, "warn": 1, "fail": 2}


def worst(statuses: list[Status]) -> Status:
    """The most severe status; `pass` when there is nothing to judge."""
    return max(statuses, key=_SEVERITY.__getitem__, default="pass")


def http_status(status: Status) -> int:
    """`warn` still serves traffic, so only `fail` takes the instance out of rotation."""
    return 503 if status == "fail" else 200


@dataclass(frozen=True)
class Observation:
    """One measurement a check made: `database:responseTime = 3.2 ms, pass`."""

    measurement: str
    status: Status
    observed_value: float | int | str | None = None
    observed_unit: str | None = None
    output: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ComponentResult:
    """What one check reported about its component at one moment."""

    component: str
    component_type: str
    critical: bool
    observations: tuple[Observation, ...]
    time: datetime

    @property
    def status(self) -> Status:
        return worst([o.status for o in self.observations])

    @property
    def effective_status(self) -> Status:
        """A failing non-critical dependency degrades the service to `warn`, not `fail`."""
        status = self.status
        return "warn" if status == "fail" and not self.critical else status


def threshold_status(value: float, warn_at: float | None, fail_at: float | None) -> Status:
    if fail_at is not None and value >= fail_at:
        return "fail"
    if warn_at is not None and value >= warn_at:
        return "warn"
    return "pass"


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ServiceIdentity:
    service: str
    version: str
    release_id: str
    environment: str
    started_at: datetime


def report_document(
    identity: ServiceIdentity,
    results: list[ComponentResult],
    *,
    now: datetime,
    include_uptime: bool = True,
) -> dict[str, Any]:
    """The health+json body for a set of component results."""
    checks: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        for observation in result.observations:
            entry: dict[str, Any] = {
                "componentId": result.component,
                "componentType": result.component_type,
                "status": observation.status,
                "time": iso(result.time),
            }
            if observation.observed_value is not None:
                entry["observedValue"] = observation.observed_value
            if observation.observed_unit is not None:
                entry["observedUnit"] = observation.observed_unit
            if observation.output:
                entry["output"] = observation.output
            if not result.critical:
                entry["critical"] = False
            entry.update(observation.extra)
            checks.setdefault(f"{result.component}:{observation.measurement}", []).append(entry)
    if include_uptime:
        checks["uptime"] = [
            {
                "componentType": "system",
                "observedValue": round((now - identity.started_at).total_seconds(), 3),
                "observedUnit": "s",
                "status": "pass",
                "time": iso(now),
            }
        ]
    status = worst([r.effective_status for r in results])
    document: dict[str, Any] = {
        "status": status,
        "version": identity.version,
        "releaseId": identity.release_id,
        "serviceId": identity.service,
        "description": f"{identity.service} ({identity.environment})",
        "checks": checks,
    }
    # One line a human can read in a probe log: "fail: database; warn: disk".
    summary = [
        f"{level}: "
        + ", ".join(sorted(r.component for r in results if r.effective_status == level))
        for level in ("fail", "warn")
        if any(r.effective_status == level for r in results)
    ]
    if summary:
        document["output"] = "; ".join(summary)
    return document
