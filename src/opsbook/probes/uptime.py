"""Uptime from a service's state changes: time-weighted, so it needs no raw probe samples.

Pure functions on Unix seconds. A change's state holds from its ``at`` until the next change's
``at`` (the last one until the end of the window). ``up`` and ``degraded`` count as available,
``down`` as unavailable, and ``unknown`` (opsbook was not watching, or had no verdict yet)
neither way; time before the first change is unknown too. The ratio leaves unknown time out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from opsbook.probes.service import StateChange
from opsbook.probes.thresholds import counts_as_available

DAY_S = 86_400.0

UPTIME_WINDOWS: dict[str, float] = {
    "24h": DAY_S,
    "7d": 7 * DAY_S,
    "30d": 30 * DAY_S,
    "90d": 90 * DAY_S,
    "1y": 365 * DAY_S,
}
"""The windows of `uptime_report`, shortest first, in seconds."""


@dataclass(frozen=True, slots=True)
class Availability:
    """Seconds of a window spent available, unavailable, and unknown."""

    available_s: float
    unavailable_s: float
    unknown_s: float

    @property
    def ratio(self) -> float | None:
        """Available time over known time; None when none of the window is known."""
        known = self.available_s + self.unavailable_s
        if known <= 0:
            return None
        return self.available_s / known


def availability(changes: Sequence[StateChange], start: float, end: float) -> Availability:
    """How the window [`start`, `end`] splits between available, unavailable and unknown time.

    `changes` are one service's, ordered by ``at`` (ties allowed: the earlier of two changes at
    the same moment holds for no time). Changes out of order raise ValueError rather than being
    sorted, because equal-``at`` changes could not be put back in their recorded order. Changes
    before `start` or after `end` may be included; only their overlap with the window counts.
    """
    if end < start:
        raise ValueError(f"the window ends ({end}) before it starts ({start})")
    _check_changes(changes)
    totals = {True: 0.0, False: 0.0, None: 0.0}
    first_at = changes[0].at if changes else end
    totals[None] += _overlap(start, first_at, start, end)
    for index, change in enumerate(changes):
        until = changes[index + 1].at if index + 1 < len(changes) else end
        totals[counts_as_available(change.state)] += _overlap(change.at, until, start, end)
    return Availability(
        available_s=totals[True], unavailable_s=totals[False], unknown_s=totals[None]
    )


def uptime_report(changes: Sequence[StateChange], now: float) -> dict[str, Availability]:
    """`availability` over each of `UPTIME_WINDOWS`, every window ending at `now`."""
    return {
        name: availability(changes, now - length, now) for name, length in UPTIME_WINDOWS.items()
    }


def _overlap(begin: float, until: float, start: float, end: float) -> float:
    """Length of [`begin`, `until`) inside [`start`, `end`]."""
    return max(0.0, min(until, end) - max(begin, start))


def _check_changes(changes: Sequence[StateChange]) -> None:
    services = {change.service for change in changes}
    if len(services) > 1:
        raise ValueError(f"changes of several services: {', '.join(sorted(services))}")
    for before, after in pairwise(changes):
        if after.at < before.at:
            raise ValueError(
                f"state changes out of order: {after.at} comes after {before.at}; "
                "pass them sorted by time"
            )
