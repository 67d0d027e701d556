"""Anti-flapping: from attempt results to a probe's state, and from probes to a service's state.

Pure functions on timestamps (Unix seconds) so the behaviour is exact on any clock.

A probe starts ``unknown``; its first attempt decides ``up`` or ``down``. After that it turns
``down`` only after ``failure_threshold`` failed attempts in a row, and ``up`` again only after
``success_threshold`` successful ones. The new state's ``since`` is the time of the *first*
attempt of the streak that crossed the threshold: the thresholds delay the verdict, not the
moment the outage began, so uptime and "down since" stay truthful.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

ProbeHealth = Literal["unknown", "up", "down"]
ServiceHealth = Literal["unknown", "up", "degraded", "down"]


@dataclass(frozen=True, slots=True)
class ProbeState:
    """What the prober knows of one probe between attempts."""

    state: ProbeHealth = "unknown"
    since: float | None = None
    """When the current state began (first attempt of the streak that set it)."""
    streak: int = 0
    """Attempts in a row with the same outcome as the last one."""
    streak_success: bool | None = None
    """The outcome of the current streak; None before any attempt."""
    streak_start: float | None = None
    """Time of the first attempt of the current streak."""
    last_at: float | None = None
    """Time of the last attempt."""

    @property
    def failures(self) -> int:
        """Consecutive failed attempts up to now."""
        return self.streak if self.streak_success is False else 0

    @property
    def successes(self) -> int:
        """Consecutive successful attempts up to now."""
        return self.streak if self.streak_success else 0


def advance(
    state: ProbeState,
    success: bool,
    at: float,
    *,
    failure_threshold: int,
    success_threshold: int,
) -> ProbeState:
    """The state after one more attempt, made at ``at``, that succeeded or not."""
    if failure_threshold < 1 or success_threshold < 1:
        raise ValueError("thresholds are at least 1")
    if state.streak_success is success:
        streak, streak_start = state.streak + 1, state.streak_start
    else:
        streak, streak_start = 1, at
    new = replace(
        state, streak=streak, streak_success=success, streak_start=streak_start, last_at=at
    )
    target: ProbeHealth = "up" if success else "down"
    if state.state == target:
        return new
    threshold = success_threshold if success else failure_threshold
    if state.state == "unknown" or streak >= threshold:
        return replace(new, state=target, since=streak_start)
    return new


@dataclass(frozen=True, slots=True)
class ProbeView:
    """One probe as the service's verdict sees it."""

    critical: bool
    state: ProbeState
    degraded: bool = False
    """The probe is up but reports a warning (``application/health+json`` status ``warn``)."""


def service_health(probes: Iterable[ProbeView]) -> ServiceHealth:
    """``down`` when a critical probe is down; ``degraded`` when a non-critical probe is down or
    an up probe warns; ``up`` when every known probe is up; ``unknown`` before any verdict."""
    known = [p for p in probes if p.state.state != "unknown"]
    if not known:
        return "unknown"
    if any(p.critical and p.state.state == "down" for p in known):
        return "down"
    if any(p.state.state == "down" or p.degraded for p in known):
        return "degraded"
    return "up"


def counts_as_available(health: ServiceHealth) -> bool | None:
    """Whether time in ``health`` is uptime; None for time that counts neither way."""
    if health == "unknown":
        return None
    return health != "down"
