"""Persisting probe states and service state history. Callers own the transaction (these only
flush).

The prober works in Unix seconds (floats); the tables hold aware UTC datetimes. The conversion
happens here and nowhere else, at microsecond resolution (what both databases store).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast, get_args

from sqlalchemy import CursorResult, Select, delete, func, select
from sqlalchemy.orm import Session

from opsbook.probes.models import ProbeStateRow, ServiceStateChange
from opsbook.probes.results import ComponentCheck, HealthStatus
from opsbook.probes.thresholds import ProbeHealth, ProbeState, ServiceHealth
from opsbook.store.base import utc_now

_PROBE_HEALTH: frozenset[str] = frozenset(get_args(ProbeHealth))
_SERVICE_HEALTH: frozenset[str] = frozenset(get_args(ServiceHealth))
_HEALTH_STATUS: frozenset[str] = frozenset(get_args(HealthStatus))


def to_datetime(unix_s: float) -> datetime:
    """Unix seconds as an aware UTC datetime (rounded to the microsecond)."""
    return datetime.fromtimestamp(unix_s, UTC)


def to_unix(moment: datetime) -> float:
    return moment.timestamp()


def _opt_datetime(unix_s: float | None) -> datetime | None:
    return None if unix_s is None else to_datetime(unix_s)


def _opt_unix(moment: datetime | None) -> float | None:
    return None if moment is None else to_unix(moment)


# --- probe states -----------------------------------------------------------------------------

SAVED_AT_LEAST_EVERY_S = 60.0
"""The prober saves a probe whose state did not change at least this often, so the stored
last attempt is never older than this while it runs (and a crash's gap is known to a minute)."""


@dataclass(frozen=True, slots=True)
class StoredProbe:
    """One row of `probe_states`: the probe's anti-flapping state and its last attempt."""

    service: str
    probe: str
    state: ProbeState
    last_error: str | None = None
    last_duration_s: float | None = None
    status_code: int | None = None
    health_status: str | None = None
    components: tuple[ComponentCheck, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.service, self.probe)


def load_probe_states(session: Session) -> dict[tuple[str, str], StoredProbe]:
    """Every stored probe, by (service, probe)."""
    rows = session.scalars(select(ProbeStateRow))
    return {(row.service, row.probe): _from_row(row) for row in rows}


def save_probe_states(session: Session, probes: Iterable[StoredProbe]) -> None:
    """Insert or overwrite the rows of `probes` (the last one wins if a key repeats).

    Select-then-write rather than a dialect's upsert: it runs the same on SQLite and PostgreSQL,
    and one prober is the only writer of this table.
    """
    wanted = {probe.key: probe for probe in probes}
    if not wanted:
        return
    services = {service for service, _ in wanted}
    existing = {
        (row.service, row.probe): row
        for row in session.scalars(select(ProbeStateRow).where(ProbeStateRow.service.in_(services)))
    }
    now = utc_now()
    for key, probe in wanted.items():
        row = existing.get(key)
        if row is None:
            row = ProbeStateRow(service=probe.service, probe=probe.probe)
            session.add(row)
        _fill_row(row, probe)
        # Set explicitly: an attempt that changed nothing still proves the probe ran.
        row.updated_at = now
    session.flush()


def delete_probe_states(session: Session, keep: set[tuple[str, str]]) -> int:
    """Delete the rows of probes not in `keep` (no longer configured); returns how many."""
    rows = session.scalars(select(ProbeStateRow))
    stale = [row for row in rows if (row.service, row.probe) not in keep]
    for row in stale:
        session.delete(row)
    session.flush()
    return len(stale)


def _fill_row(row: ProbeStateRow, probe: StoredProbe) -> None:
    state = probe.state
    row.state = state.state
    row.since = _opt_datetime(state.since)
    row.streak = state.streak
    row.streak_success = state.streak_success
    row.streak_start = _opt_datetime(state.streak_start)
    row.last_at = _opt_datetime(state.last_at)
    row.last_error = probe.last_error
    row.last_duration_s = probe.last_duration_s
    row.status_code = probe.status_code
    row.health_status = probe.health_status
    row.components = [component_json(c) for c in probe.components]


def _from_row(row: ProbeStateRow) -> StoredProbe:
    state = ProbeState(
        state=_checked(row.state, _PROBE_HEALTH, "probe state"),
        since=_opt_unix(row.since),
        streak=row.streak,
        streak_success=row.streak_success,
        streak_start=_opt_unix(row.streak_start),
        last_at=_opt_unix(row.last_at),
    )
    return StoredProbe(
        service=row.service,
        probe=row.probe,
        state=state,
        last_error=row.last_error,
        last_duration_s=row.last_duration_s,
        status_code=row.status_code,
        health_status=row.health_status,
        components=tuple(_component_from_json(item) for item in row.components),
    )


def component_json(check: ComponentCheck) -> dict[str, Any]:
    """A component as stored and as the status API shows it."""
    value = check.observed_value
    return {
        "component": check.component,
        "measurement": check.measurement,
        "status": check.status,
        # JSON has no NaN or infinity (PostgreSQL rejects them): such a value is not kept.
        "observed_value": value if value is not None and math.isfinite(value) else None,
        "observed_unit": check.observed_unit,
        "output": check.output,
    }


def _component_from_json(item: dict[str, Any]) -> ComponentCheck:
    value = item.get("observed_value")
    return ComponentCheck(
        component=item["component"],
        measurement=item["measurement"],
        status=_checked(item["status"], _HEALTH_STATUS, "component status"),
        observed_value=None if value is None else float(value),
        observed_unit=item.get("observed_unit"),
        output=item.get("output"),
    )


def _checked(value: str, allowed: frozenset[str], what: str) -> Any:
    """`value` if it is one of `allowed`; the caller's Literal type is the declared one."""
    if value not in allowed:
        raise ValueError(f"unexpected {what} {value!r} (expected one of {sorted(allowed)})")
    return value


# --- service state history --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateChange:
    """`service` entered `state` at `at` (Unix seconds)."""

    service: str
    state: ServiceHealth
    at: float


def record_service_state(session: Session, service: str, state: ServiceHealth, at: float) -> bool:
    """Append a change to `state` at `at`, unless `state` already is the service's latest state.

    An `at` earlier than the latest change's is moved up to it: a verdict reached late about an
    earlier moment never rewrites recorded history. Returns True when a row was added.
    """
    _checked(state, _SERVICE_HEALTH, "service state")
    latest = session.scalars(_latest_first(service).limit(1)).first()
    moment = to_datetime(at)
    if latest is not None:
        if latest.state == state:
            return False
        moment = max(moment, latest.at)
    session.add(ServiceStateChange(service=service, state=state, at=moment, recorded_at=utc_now()))
    session.flush()
    return True


def latest_service_states(session: Session) -> dict[str, StateChange]:
    """Each service's latest recorded change, by service."""
    return {row.service: _change(row) for row in session.scalars(_latest_per_service())}


def service_state_history(
    session: Session, service: str, start: float, end: float
) -> list[StateChange]:
    """The change in effect at `start` (if any), then every change in (`start`, `end`], by time.

    Exactly what `uptime.availability(changes, start, end)` needs.
    """
    if end < start:
        raise ValueError(f"the window ends ({end}) before it starts ({start})")
    start_at, end_at = to_datetime(start), to_datetime(end)
    in_effect = session.scalars(
        _latest_first(service).where(ServiceStateChange.at <= start_at).limit(1)
    ).first()
    later = session.scalars(
        select(ServiceStateChange)
        .where(
            ServiceStateChange.service == service,
            ServiceStateChange.at > start_at,
            ServiceStateChange.at <= end_at,
        )
        .order_by(ServiceStateChange.at, ServiceStateChange.id)
    )
    rows = ([in_effect] if in_effect is not None else []) + list(later)
    return [_change(row) for row in rows]


def prune_state_history(session: Session, before: float) -> int:
    """Delete changes older than `before`, except, per service, the one in effect at `before`
    (the latest at or before it), so that history from `before` on stays complete.

    Returns how many rows were deleted.
    """
    cutoff = to_datetime(before)
    keep = _newest_ids(at_or_before=cutoff)
    result = session.execute(
        delete(ServiceStateChange)
        .where(ServiceStateChange.at < cutoff, ServiceStateChange.id.not_in(keep))
        .execution_options(synchronize_session="fetch")
    )
    session.flush()
    return cast(CursorResult[Any], result).rowcount


def close_open_states(
    session: Session, at: float, services: Iterable[str] | None = None
) -> list[str]:
    """Record ``unknown`` at `at` for each service (of `services`, default all) whose latest
    state is known; returns those services, sorted.

    For when opsbook stops, or starts after a crash: time nobody watched counts neither as
    uptime nor as downtime.
    """
    latest = latest_service_states(session)
    chosen = set(latest) if services is None else set(services) & set(latest)
    closed = sorted(name for name in chosen if latest[name].state != "unknown")
    for name in closed:
        record_service_state(session, name, "unknown", at)
    return closed


def _latest_first(service: str) -> Select[ServiceStateChange]:
    # `id` breaks ties: clamped changes can share an `at`, and the later row is the newer one.
    return (
        select(ServiceStateChange)
        .where(ServiceStateChange.service == service)
        .order_by(ServiceStateChange.at.desc(), ServiceStateChange.id.desc())
    )


def _newest_ids(at_or_before: datetime | None = None) -> Select[int]:
    """The id of each service's latest change (at or before `at_or_before`, when given)."""
    ranked = select(
        ServiceStateChange.id,
        func.row_number()
        .over(
            partition_by=ServiceStateChange.service,
            order_by=(ServiceStateChange.at.desc(), ServiceStateChange.id.desc()),
        )
        .label("rank"),
    )
    if at_or_before is not None:
        ranked = ranked.where(ServiceStateChange.at <= at_or_before)
    newest = ranked.subquery()
    return select(newest.c.id).where(newest.c.rank == 1)


def _latest_per_service() -> Select[ServiceStateChange]:
    return select(ServiceStateChange).where(ServiceStateChange.id.in_(_newest_ids()))


def _change(row: ServiceStateChange) -> StateChange:
    state = _checked(row.state, _SERVICE_HEALTH, "service state")
    return StateChange(service=row.service, state=state, at=to_unix(row.at))
