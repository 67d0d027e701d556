"""Uptime from state changes: exact hand-computed windows and properties of the arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsbook.probes.service import StateChange
from opsbook.probes.thresholds import ServiceHealth
from opsbook.probes.uptime import UPTIME_WINDOWS, Availability, availability, uptime_report

DAY = 86_400.0
NOW = 1_750_000_000.0


def _c(state: ServiceHealth, at: float) -> StateChange:
    return StateChange(service="api", state=state, at=at)


def test_windows_are_the_documented_ones_in_order() -> None:
    assert list(UPTIME_WINDOWS) == ["24h", "7d", "30d", "90d", "1y"]
    assert UPTIME_WINDOWS["24h"] == DAY
    assert UPTIME_WINDOWS["7d"] == 7 * DAY
    assert UPTIME_WINDOWS["1y"] == 365 * DAY


def test_a_fifteen_minute_outage_in_the_last_day() -> None:
    changes = [_c("up", NOW - 30 * DAY), _c("down", NOW - 3600), _c("up", NOW - 2700)]
    day = availability(changes, NOW - DAY, NOW)
    assert day == Availability(available_s=DAY - 900, unavailable_s=900, unknown_s=0)
    assert day.ratio == 1 - 900 / DAY


def test_unknown_time_counts_neither_way() -> None:
    # Watched from 10h ago; opsbook was stopped for 2h; down for 1h of the 8 known hours.
    changes = [
        _c("up", NOW - 10 * 3600),
        _c("unknown", NOW - 6 * 3600),
        _c("up", NOW - 4 * 3600),
        _c("down", NOW - 3600),
    ]
    result = availability(changes, NOW - DAY, NOW)
    assert result == Availability(
        available_s=7 * 3600, unavailable_s=3600, unknown_s=14 * 3600 + 2 * 3600
    )
    assert result.ratio == 7 / 8


def test_degraded_counts_as_available() -> None:
    changes = [_c("up", 0), _c("degraded", 50)]
    assert availability(changes, 0, 100) == Availability(100, 0, 0)


def test_a_change_exactly_at_the_window_start() -> None:
    changes = [_c("up", 0), _c("down", 100), _c("up", 160)]
    assert availability(changes, 100, 200) == Availability(40, 60, 0)
    # The change at `start` holds; the one before it is over.
    assert availability(changes[1:], 100, 200) == Availability(40, 60, 0)


def test_a_change_exactly_at_the_window_end_holds_for_no_time() -> None:
    assert availability([_c("up", 0), _c("down", 100)], 0, 100) == Availability(100, 0, 0)


def test_time_before_the_first_change_is_unknown() -> None:
    assert availability([_c("down", 75)], 0, 100) == Availability(0, 25, 75)


def test_changes_outside_the_window_only_count_where_they_overlap() -> None:
    changes = [_c("down", -500), _c("up", 20), _c("down", 150), _c("up", 300)]
    assert availability(changes, 0, 100) == Availability(80, 20, 0)


def test_nothing_known_has_no_ratio() -> None:
    assert availability([], 0, 100) == Availability(0, 0, 100)
    assert availability([], 0, 100).ratio is None
    assert availability([_c("unknown", 0)], 0, 100).ratio is None
    assert availability([_c("up", 0)], 50, 50).ratio is None  # an empty window


def test_equal_times_are_allowed_and_the_later_change_holds() -> None:
    # Clamped verdicts can share a moment; the first of them holds for no time.
    changes = [_c("up", 0), _c("down", 40), _c("unknown", 40)]
    assert availability(changes, 0, 100) == Availability(40, 0, 60)


def test_changes_out_of_order_are_rejected() -> None:
    with pytest.raises(ValueError, match="out of order"):
        availability([_c("up", 50), _c("down", 10)], 0, 100)


def test_changes_of_several_services_are_rejected() -> None:
    changes = [_c("up", 0), StateChange(service="web", state="down", at=10)]
    with pytest.raises(ValueError, match="several services: api, web"):
        availability(changes, 0, 100)


def test_a_window_ending_before_it_starts_is_rejected() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        availability([], 100, 0)


def test_report_covers_every_window_ending_now() -> None:
    # Watched for 10 days: up, except a 1-day outage 5 days ago.
    changes = [_c("up", NOW - 10 * DAY), _c("down", NOW - 5 * DAY), _c("up", NOW - 4 * DAY)]
    report = uptime_report(changes, NOW)
    assert list(report) == list(UPTIME_WINDOWS)
    assert report["24h"] == Availability(DAY, 0, 0)
    assert report["7d"] == Availability(6 * DAY, DAY, 0)
    assert report["30d"] == Availability(9 * DAY, DAY, 20 * DAY)
    assert report["1y"] == Availability(9 * DAY, DAY, 355 * DAY)
    assert report["1y"].ratio == report["30d"].ratio == 0.9


# --- properties ------------------------------------------------------------------------------

STATES: list[ServiceHealth] = ["unknown", "up", "degraded", "down"]
# Whole milliseconds keep the sums exact enough to compare with a tight tolerance.
moments = st.integers(min_value=0, max_value=10_000_000).map(lambda ms: ms / 1000)


@st.composite
def histories(draw: st.DrawFn) -> list[StateChange]:
    times = sorted(draw(st.lists(moments, max_size=20)))
    return [_c(draw(st.sampled_from(STATES)), at) for at in times]


@st.composite
def windows(draw: st.DrawFn) -> tuple[float, float]:
    a, b = draw(moments), draw(moments)
    return min(a, b), max(a, b)


@given(histories(), windows())
def test_the_parts_add_up_to_the_window(
    changes: list[StateChange], window: tuple[float, float]
) -> None:
    start, end = window
    result = availability(changes, start, end)
    assert min(result.available_s, result.unavailable_s, result.unknown_s) >= 0
    total = result.available_s + result.unavailable_s + result.unknown_s
    assert total == pytest.approx(end - start, abs=1e-6)
    assert result.ratio is None or 0 <= result.ratio <= 1


@given(histories(), windows(), st.floats(min_value=0, max_value=1))
def test_splitting_a_window_sums(
    changes: list[StateChange], window: tuple[float, float], fraction: float
) -> None:
    start, end = window
    middle = start + (end - start) * fraction
    whole = availability(changes, start, end)
    left, right = availability(changes, start, middle), availability(changes, middle, end)
    assert left.available_s + right.available_s == pytest.approx(whole.available_s, abs=1e-6)
    assert left.unavailable_s + right.unavailable_s == pytest.approx(whole.unavailable_s, abs=1e-6)
    assert left.unknown_s + right.unknown_s == pytest.approx(whole.unknown_s, abs=1e-6)


@given(histories(), windows())
def test_only_the_history_in_effect_matters(
    changes: list[StateChange], window: tuple[float, float]
) -> None:
    # What `service_state_history` returns (the change in effect at start, then the later ones
    # up to end) gives the same answer as the whole history.
    start, end = window
    in_effect = [c for c in changes if c.at <= start][-1:]
    inside = [c for c in changes if start < c.at <= end]
    assert availability(in_effect + inside, start, end) == availability(changes, start, end)


@given(histories(), windows())
def test_known_time_is_the_time_of_known_states(
    changes: list[StateChange], window: tuple[float, float]
) -> None:
    start, end = window
    result = availability(changes, start, end)
    if all(c.state in ("up", "degraded") for c in changes):
        assert result.unavailable_s == 0
    if all(c.state == "down" for c in changes):
        assert result.available_s == 0
