"""The prober's tables: each probe's last known state, and each service's state changes.

`probe_states` holds one row per configured probe, overwritten as the probe runs, so that a
restarted opsbook resumes its anti-flapping streaks instead of starting from ``unknown``.
`service_state_changes` is append-only: one row each time a service's verdict changes. Uptime is
computed from these transitions, so a year of history costs a few rows, not a year of samples.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opsbook.store.base import Base, UTCDateTime, utc_now

NAME_MAX = 255
STATE_MAX = 16
HEALTH_STATUS_MAX = 8


class ProbeStateRow(Base):
    """One probe's `ProbeState` and what its last attempt found."""

    __tablename__ = "probe_states"

    service: Mapped[str] = mapped_column(String(NAME_MAX), primary_key=True)
    probe: Mapped[str] = mapped_column(String(NAME_MAX), primary_key=True)
    state: Mapped[str] = mapped_column(String(STATE_MAX))
    since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    streak: Mapped[int] = mapped_column(Integer)
    streak_success: Mapped[bool | None] = mapped_column(Boolean)
    streak_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    last_duration_s: Mapped[float | None] = mapped_column(Float)
    status_code: Mapped[int | None] = mapped_column(Integer)
    health_status: Mapped[str | None] = mapped_column(String(HEALTH_STATUS_MAX))
    # A list of {component, measurement, status, observed_value, observed_unit, output}.
    components: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now, onupdate=utc_now)

    def __repr__(self) -> str:
        return (
            f"ProbeStateRow(service={self.service!r}, probe={self.probe!r}, state={self.state!r})"
        )


class ServiceStateChange(Base):
    """A service entered `state` at `at` (and stayed in it until its next change)."""

    __tablename__ = "service_state_changes"
    # History and "latest state" queries are per service, in time order.
    __table_args__ = (Index("ix_service_state_changes_service_at", "service", "at"),)

    # SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    service: Mapped[str] = mapped_column(String(NAME_MAX))
    state: Mapped[str] = mapped_column(String(STATE_MAX))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)

    def __repr__(self) -> str:
        return f"ServiceStateChange(service={self.service!r}, state={self.state!r}, at={self.at!r})"
