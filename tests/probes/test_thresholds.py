"""Anti-flapping thresholds, exactly, on explicit timestamps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsbook.probes.thresholds import (
    ProbeState,
    ProbeView,
    advance,
    counts_as_available,
    service_health,
)


def run(outcomes: str, failure: int = 3, success: int = 2, step: float = 10.0) -> list[ProbeState]:
    """States after each attempt; ``outcomes`` is a string of ``+`` (success) and ``-``."""
    state = ProbeState()
    states = []
    for index, mark in enumerate(outcomes):
        state = advance(
            state,
            mark == "+",
            1000.0 + index * step,
            failure_threshold=failure,
            success_threshold=success,
        )
        states.append(state)
    return states


def test_the_first_attempt_decides_from_unknown() -> None:
    assert run("+")[0].state == "up"
    assert run("-")[0].state == "down"
    assert run("-")[0].since == 1000.0


def test_down_only_at_the_third_failure_in_a_row_and_dated_from_the_first() -> None:
    states = run("+--+---+")
    assert [s.state for s in states] == ["up", "up", "up", "up", "up", "up", "down", "down"]
    # Attempts at 1000, 1010, ...: the streak that crossed the threshold began at index 4.
    assert states[6].since == 1040.0
    assert states[6].failures == 3


def test_up_again_only_after_the_success_threshold() -> None:
    states = run("---+-++", failure=1, success=2)
    assert [s.state for s in states] == ["down", "down", "down", "down", "down", "down", "up"]
    assert states[6].since == 1050.0  # the first success of the streak of two
    assert states[6].successes == 2


def test_flapping_below_the_thresholds_never_changes_the_state() -> None:
    states = run("+" + "-+" * 50 + "--+" * 20, failure=3, success=2)
    assert {s.state for s in states} == {"up"}
    assert states[-1].since == 1000.0


def test_since_does_not_move_while_the_state_holds() -> None:
    states = run("---------", failure=3)
    assert {s.since for s in states} == {1000.0}
    assert states[-1].failures == 9


def test_thresholds_must_be_positive() -> None:
    with pytest.raises(ValueError):
        advance(ProbeState(), True, 0.0, failure_threshold=0, success_threshold=1)


@given(
    outcomes=st.text(alphabet="+-", min_size=1, max_size=60),
    failure=st.integers(1, 5),
    success=st.integers(1, 5),
)
def test_a_state_change_needs_a_full_streak(outcomes: str, failure: int, success: int) -> None:
    states = run(outcomes, failure, success)
    for index in range(1, len(states)):
        before, after = states[index - 1], states[index]
        if before.state != after.state:
            needed = failure if after.state == "down" else success
            assert after.streak >= needed
            assert outcomes[index - needed + 1 : index + 1] == outcomes[index] * needed
            assert after.since == 1000.0 + (index - after.streak + 1) * 10.0


def view(state: str, critical: bool = True, degraded: bool = False) -> ProbeView:
    return ProbeView(critical, ProbeState(state=state, since=0.0), degraded)  # type: ignore[arg-type]


def test_service_health_from_its_probes() -> None:
    assert service_health([]) == "unknown"
    assert service_health([view("unknown")]) == "unknown"
    assert service_health([view("up"), view("unknown")]) == "up"
    assert service_health([view("up"), view("down")]) == "down"
    assert service_health([view("up"), view("down", critical=False)]) == "degraded"
    assert service_health([view("up", degraded=True)]) == "degraded"
    assert counts_as_available("degraded") is True
    assert counts_as_available("down") is False
    assert counts_as_available("unknown") is None
