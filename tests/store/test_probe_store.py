"""Probe states and service state history on both engines, and the 0002 migration."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from opsbook.catalog.service import list_services
from opsbook.probes.models import ServiceStateChange
from opsbook.probes.results import ComponentCheck
from opsbook.probes.service import (
    StateChange,
    StoredProbe,
    close_open_states,
    delete_probe_states,
    latest_service_states,
    load_probe_states,
    prune_state_history,
    record_service_state,
    save_probe_states,
    service_state_history,
)
from opsbook.probes.thresholds import ProbeState, ServiceHealth
from opsbook.probes.uptime import availability
from opsbook.store import alembic_config, create_session_factory, upgrade_database

T = 1_750_000_000.0  # whole seconds and binary fractions survive the microsecond round trip

DOWN = ProbeState(
    state="down", since=T + 0.25, streak=3, streak_success=False, streak_start=T + 0.25,
    last_at=T + 60.5,
)  # fmt: skip
COMPONENTS = (
    ComponentCheck("database", "responseTime", "warn", 812.5, "ms", "slow queries"),
    ComponentCheck("cache", "", "pass"),
)


def _stored(service: str, probe: str, state: ProbeState = DOWN, **extra: object) -> StoredProbe:
    return StoredProbe(service=service, probe=probe, state=state, **extra)  # type: ignore[arg-type]


def _record(factory: sessionmaker[Session], service: str, state: ServiceHealth, at: float) -> bool:
    with factory.begin() as session:
        return record_service_state(session, service, state, at)


def _history(factory: sessionmaker[Session], service: str) -> list[tuple[str, float]]:
    with factory() as session:
        return [(c.state, c.at) for c in service_state_history(session, service, 0, 2 * T)]


# --- probe states ----------------------------------------------------------------------------


def test_probe_states_round_trip(session_factory: sessionmaker[Session]) -> None:
    full = _stored(
        "api",
        "http",
        last_error="[STATUS] == 200 failed: 503",
        last_duration_s=0.125,
        status_code=503,
        health_status="warn",
        components=COMPONENTS,
    )
    bare = _stored("api", "tcp", ProbeState())  # a probe that never ran: everything None
    with session_factory.begin() as session:
        save_probe_states(session, [full, bare])
    with session_factory() as session:
        loaded = load_probe_states(session)
    assert loaded == {("api", "http"): full, ("api", "tcp"): bare}
    assert loaded["api", "http"].state.failures == 3


def test_saving_again_overwrites(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        save_probe_states(session, [_stored("api", "http", components=COMPONENTS)])
        save_probe_states(session, [_stored("web", "http")])
    recovered = ProbeState(
        state="up", since=T + 120, streak=2, streak_success=True, streak_start=T + 120,
        last_at=T + 180,
    )  # fmt: skip
    again = _stored("api", "http", recovered, status_code=200)
    with session_factory.begin() as session:
        save_probe_states(session, [again])
        save_probe_states(session, [])  # nothing to do
    with session_factory() as session:
        loaded = load_probe_states(session)
    assert loaded == {("api", "http"): again, ("web", "http"): _stored("web", "http")}
    assert loaded["api", "http"].components == ()  # replaced, not merged


def test_a_non_finite_observed_value_is_not_stored(session_factory: sessionmaker[Session]) -> None:
    weird = (ComponentCheck("db", "load", "fail", float("nan")), ComponentCheck("x", "y", "pass"))
    with session_factory.begin() as session:
        save_probe_states(session, [_stored("api", "http", components=weird)])
    with session_factory() as session:
        [stored] = load_probe_states(session).values()
    assert stored.components == (ComponentCheck("db", "load", "fail", None), weird[1])


def test_delete_keeps_only_configured_probes(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        save_probe_states(
            session, [_stored("api", "http"), _stored("api", "tcp"), _stored("web", "http")]
        )
    with session_factory.begin() as session:
        assert delete_probe_states(session, {("api", "http"), ("gone", "x")}) == 2
    with session_factory.begin() as session:
        assert delete_probe_states(session, {("api", "http")}) == 0
        assert set(load_probe_states(session)) == {("api", "http")}


# --- service state history -------------------------------------------------------------------


def test_record_skips_repeats_and_clamps_backdated_changes(
    session_factory: sessionmaker[Session],
) -> None:
    assert _record(session_factory, "api", "up", T)
    assert not _record(session_factory, "api", "up", T + 10)  # no change, no row
    assert _record(session_factory, "api", "down", T + 100)
    # Decided later about a moment before the last change: history is not rewritten.
    assert _record(session_factory, "api", "up", T + 50)
    assert _record(session_factory, "api", "degraded", T + 200)
    assert _history(session_factory, "api") == [
        ("up", T),
        ("down", T + 100),
        ("up", T + 100),
        ("degraded", T + 200),
    ]
    with session_factory() as session:
        # Clamped rows share `at`; the later one is the latest.
        latest = latest_service_states(session)
        rows = session.scalars(select(ServiceStateChange)).all()
    assert latest == {"api": StateChange("api", "degraded", T + 200)}
    assert all(row.recorded_at.tzinfo is UTC for row in rows)


def test_record_refuses_an_unknown_state(session_factory: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="unexpected service state 'sideways'"):
        _record(session_factory, "api", "sideways", T)  # type: ignore[arg-type]


def test_latest_states_are_per_service(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        assert latest_service_states(session) == {}
    _record(session_factory, "api", "up", T)
    _record(session_factory, "web", "down", T + 5)
    _record(session_factory, "api", "down", T + 10)
    _record(session_factory, "api", "down", T + 20)
    with session_factory() as session:
        assert latest_service_states(session) == {
            "api": StateChange("api", "down", T + 10),
            "web": StateChange("web", "down", T + 5),
        }


def test_history_window_starts_with_the_change_in_effect(
    session_factory: sessionmaker[Session],
) -> None:
    for state, at in [("up", 0.0), ("down", 100.0), ("up", 200.0), ("down", 300.0)]:
        _record(session_factory, "api", state, T + at)  # type: ignore[arg-type]
    _record(session_factory, "web", "down", T + 150)
    with session_factory() as session:

        def window(start: float, end: float) -> list[tuple[str, float]]:
            changes = service_state_history(session, "api", T + start, T + end)
            return [(c.state, c.at - T) for c in changes]

        assert window(150, 250) == [("down", 100), ("up", 200)]
        assert window(100, 200) == [("down", 100), ("up", 200)]  # at start: in effect; at end: in
        assert window(-50, 50) == [("up", 0)]  # nothing in effect before the first change
        assert window(-50, -10) == []
        assert window(400, 500) == [("down", 300)]
        assert service_state_history(session, "nobody", T, T + 10) == []
        with pytest.raises(ValueError, match="before it starts"):
            service_state_history(session, "api", T + 10, T)
        # Feeds `availability` directly: down 100..200 and 300..350 of 50..350.
        result = availability(
            service_state_history(session, "api", T + 50, T + 350), T + 50, T + 350
        )
        assert (result.available_s, result.unavailable_s, result.unknown_s) == (150, 150, 0)


def test_prune_keeps_the_change_in_effect(session_factory: sessionmaker[Session]) -> None:
    for state, at in [("up", 0.0), ("down", 100.0), ("up", 200.0), ("down", 300.0)]:
        _record(session_factory, "api", state, T + at)  # type: ignore[arg-type]
    _record(session_factory, "web", "up", T + 10)  # long ago, but still in effect
    _record(session_factory, "db", "up", T + 100)
    _record(session_factory, "db", "down", T + 250)  # exactly at the cutoff: in effect itself
    with session_factory.begin() as session:
        before = availability(
            service_state_history(session, "api", T + 250, T + 400), T + 250, T + 400
        )
        assert prune_state_history(session, T + 250) == 3  # api at 0 and 100; db at 100
    assert _history(session_factory, "api") == [("up", T + 200), ("down", T + 300)]
    assert _history(session_factory, "web") == [("up", T + 10)]
    assert _history(session_factory, "db") == [("down", T + 250)]
    with session_factory.begin() as session:
        after = availability(
            service_state_history(session, "api", T + 250, T + 400), T + 250, T + 400
        )
        assert after == before
        assert prune_state_history(session, T + 250) == 0


def test_close_open_states_marks_watched_services_unknown(
    session_factory: sessionmaker[Session],
) -> None:
    _record(session_factory, "api", "up", T)
    _record(session_factory, "web", "down", T)
    _record(session_factory, "db", "up", T)
    _record(session_factory, "db", "unknown", T + 5)  # already closed
    with session_factory.begin() as session:
        assert close_open_states(session, T + 60, services=["web", "db", "nobody"]) == ["web"]
    with session_factory.begin() as session:
        assert close_open_states(session, T + 30) == ["api"]  # web is closed by now
        assert close_open_states(session, T + 90) == []
    assert _history(session_factory, "api")[-1] == ("unknown", T + 30)
    assert _history(session_factory, "web")[-1] == ("unknown", T + 60)
    with session_factory() as session:
        assert {c.state for c in latest_service_states(session).values()} == {"unknown"}


def test_times_round_trip_at_microsecond_resolution(
    session_factory: sessionmaker[Session],
) -> None:
    at = 1_750_000_000.123456
    _record(session_factory, "api", "up", at)
    with session_factory() as session:
        [change] = latest_service_states(session).values()
        row = session.scalars(select(ServiceStateChange)).one()
    assert change.at == pytest.approx(at, abs=1e-6)
    assert row.at == datetime(2025, 6, 15, 15, 6, 40, 123456, tzinfo=UTC)


def test_state_change_ids_are_generated(session_factory: sessionmaker[Session]) -> None:
    for index in range(3):
        _record(session_factory, "api", "up" if index % 2 else "down", T + index)
    with session_factory() as session:
        ids = list(session.scalars(select(ServiceStateChange.id).order_by(ServiceStateChange.id)))
    assert len(set(ids)) == 3


# --- the migration ---------------------------------------------------------------------------


def test_upgrade_from_0001_fills_the_new_service_columns(engine: Engine) -> None:
    upgrade_database(engine, "0001_services")
    with engine.begin() as conn:
        conn.execute(
            text(
                "insert into services (name, environment, url, created_at, updated_at) "
                "values ('api', 'production', null, :t, :t)"
            ),
            {"t": datetime(2025, 1, 1, tzinfo=UTC)},
        )
    result = upgrade_database(engine)
    assert (result.from_revision, result.to_revision) == ("0001_services", "0002_probes")
    with create_session_factory(engine)() as session:
        [api] = list_services(session)
    assert (api.name, api.public, api.links, api.dependencies) == ("api", False, {}, [])
    assert (api.description, api.owner, api.team, api.tier) == (None, None, None, None)
    tables = set(inspect(engine).get_table_names())
    assert {"probe_states", "service_state_changes"} <= tables


def test_downgrade_to_0001_keeps_the_services(migrated_engine: Engine) -> None:
    with migrated_engine.begin() as conn:
        conn.execute(
            text(
                "insert into services (name, environment, created_at, updated_at) "
                "values ('api', 'production', :t, :t)"
            ),
            {"t": datetime(2025, 1, 1, tzinfo=UTC)},
        )
    with migrated_engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001_services")
    inspector = inspect(migrated_engine)
    assert "probe_states" not in inspector.get_table_names()
    assert "service_state_changes" not in inspector.get_table_names()
    columns = {c["name"] for c in inspector.get_columns("services")}
    assert columns == {"id", "name", "environment", "url", "created_at", "updated_at"}
    with migrated_engine.connect() as conn:
        assert conn.execute(text("select name from services")).scalars().all() == ["api"]
    upgrade_database(migrated_engine)  # and up again, over the kept row


def test_new_constraint_names_follow_the_convention(migrated_engine: Engine) -> None:
    inspector = inspect(migrated_engine)
    assert inspector.get_pk_constraint("probe_states")["name"] == "pk_probe_states"
    assert inspector.get_pk_constraint("probe_states")["constrained_columns"] == [
        "service",
        "probe",
    ]
    assert inspector.get_pk_constraint("service_state_changes")["name"] == (
        "pk_service_state_changes"
    )
    indexes = inspector.get_indexes("service_state_changes")
    assert [(i["name"], i["column_names"]) for i in indexes] == [
        ("ix_service_state_changes_service_at", ["service", "at"])
    ]
