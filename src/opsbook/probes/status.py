"""``opsbook status`` and ``GET /api/v1/status``: each service's verdict, since when, its uptime,
and what is failing. Built from the relational store, which the prober keeps current (within a
second), so a terminal can read it while ``opsbook serve`` runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from opsbook.config import OpsbookConfig
from opsbook.config.models import Service
from opsbook.probes import service as probe_store
from opsbook.probes.results import ComponentCheck
from opsbook.probes.service import StateChange, StoredProbe
from opsbook.probes.specs import ProbeSpec, probe_specs
from opsbook.probes.thresholds import ProbeView, ServiceHealth, service_health
from opsbook.probes.uptime import UPTIME_WINDOWS, uptime_report

STALE_AFTER_INTERVALS = 3
"""A probe not attempted for this many intervals (plus its timeout, and never less than twice
the prober's save period) is reported unknown: nobody is watching it (``opsbook serve`` is
stopped or stuck)."""


@dataclass(frozen=True, slots=True)
class ProbeReport:
    name: str
    kind: str
    instance: str
    critical: bool
    state: str
    since: float | None
    last_checked: float | None
    last_error: str | None
    duration_s: float | None
    status_code: int | None
    health_status: str | None
    components: tuple[ComponentCheck, ...]
    stale: bool = False
    """The last attempt is too old to tell anything about now; ``state`` is then unknown."""

    @property
    def failing_components(self) -> list[ComponentCheck]:
        return [c for c in self.components if c.status != "pass"]


@dataclass(frozen=True, slots=True)
class ServiceReport:
    service: Service
    state: ServiceHealth
    since: float | None
    uptime: dict[str, float | None]
    """Availability ratio per window (``24h`` ... ``1y``); None where nothing is known."""
    probes: tuple[ProbeReport, ...]

    @property
    def failing_probes(self) -> list[ProbeReport]:
        """Probes that are down, failed their last attempt, or report components not passing."""
        return [
            p
            for p in self.probes
            if not p.stale
            and (p.state == "down" or p.last_error is not None or p.failing_components)
        ]


def read_status(
    session: Session,
    config: OpsbookConfig,
    now: float,
    services: Sequence[str] = (),
    live: Mapping[tuple[str, str], StoredProbe] | None = None,
) -> list[ServiceReport]:
    """The report of every configured service (or of ``services``), in config order.

    ``live`` (from a running prober) replaces the stored states, which lag by up to a minute.
    """
    stored = probe_store.load_probe_states(session)
    stored.update(live or {})
    specs = probe_specs(config)
    start = now - max(UPTIME_WINDOWS.values())
    reports = []
    for svc in config.services:
        if services and svc.name not in services:
            continue
        history = probe_store.service_state_history(session, svc.name, start, now)
        own = [spec for spec in specs if spec.service == svc.name]
        reports.append(service_report(svc, own, stored, history, now))
    return reports


def service_report(
    svc: Service,
    specs: Sequence[ProbeSpec],
    stored: Mapping[tuple[str, str], StoredProbe],
    history: Sequence[StateChange],
    now: float,
) -> ServiceReport:
    probes = tuple(_probe_report(spec, stored.get(spec.key), now) for spec in specs)
    views = [
        ProbeView(
            critical=spec.critical,
            state=record.state,
            degraded=record.health_status == "warn" and record.state.state == "up",
        )
        for spec in specs
        if (record := stored.get(spec.key)) is not None and not _stale(spec, record, now)
    ]
    state = service_health(views)
    uptime = {name: a.ratio for name, a in uptime_report(history, now).items()}
    return ServiceReport(svc, state, _since(state, views, history), uptime, probes)


def _since(
    state: ServiceHealth, views: list[ProbeView], history: Sequence[StateChange]
) -> float | None:
    """When the verdict began. Up and down come from the probes, which keep their ``since``
    across restarts; degraded and unknown from the service's recorded history."""
    if state == "down":
        down = [v.state.since for v in views if v.critical and v.state.state == "down"]
        return min((s for s in down if s is not None), default=None)
    if state == "up":
        ups = [v.state.since for v in views if v.state.since is not None]
        if ups:
            return max(ups)
    latest = history[-1] if history else None
    return latest.at if latest is not None and latest.state == state else None


def _stale(spec: ProbeSpec, record: StoredProbe, now: float) -> bool:
    last = record.state.last_at
    limit = max(
        STALE_AFTER_INTERVALS * spec.interval_s + spec.timeout_s,
        2 * probe_store.SAVED_AT_LEAST_EVERY_S,
    )
    return last is None or now - last > limit


def _probe_report(spec: ProbeSpec, record: StoredProbe | None, now: float) -> ProbeReport:
    if record is None:
        return ProbeReport(
            spec.name, spec.kind, spec.instance, spec.critical, "unknown",
            None, None, None, None, None, None, (),
        )  # fmt: skip
    state = record.state
    stale = _stale(spec, record, now)
    return ProbeReport(
        name=spec.name,
        kind=spec.kind,
        instance=spec.instance,
        critical=spec.critical,
        state="unknown" if stale else state.state,
        since=state.since,
        last_checked=state.last_at,
        last_error=record.last_error,
        duration_s=record.last_duration_s,
        status_code=record.status_code,
        health_status=record.health_status,
        components=record.components,
        stale=stale,
    )


# --- JSON ------------------------------------------------------------------------------------


def iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def report_json(report: ServiceReport) -> dict[str, Any]:
    """One service as ``opsbook status --json`` and ``/api/v1/status`` print it."""
    svc = report.service
    return {
        "service": svc.name,
        "description": svc.description,
        "environment": svc.environment,
        "owner": svc.owner,
        "team": svc.team,
        "tier": svc.tier,
        "public": svc.public,
        "links": svc.links.as_dict(),
        "dependencies": list(svc.dependencies),
        "state": report.state,
        "since": iso(report.since),
        "uptime": report.uptime,
        "probes": [_probe_json(p) for p in report.probes],
        "failing": [
            {"probe": p.name, "error": p.last_error, "components": _components(p)}
            for p in report.failing_probes
        ],
    }


def _probe_json(probe: ProbeReport) -> dict[str, Any]:
    return {
        "name": probe.name,
        "type": probe.kind,
        "instance": probe.instance,
        "critical": probe.critical,
        "state": probe.state,
        "since": iso(probe.since),
        "last_checked": iso(probe.last_checked),
        "last_error": probe.last_error,
        "duration_seconds": probe.duration_s,
        "status_code": probe.status_code,
        "health_status": probe.health_status,
        "stale": probe.stale,
    }


def _components(probe: ProbeReport) -> list[dict[str, Any]]:
    return [probe_store.component_json(c) for c in probe.failing_components]
