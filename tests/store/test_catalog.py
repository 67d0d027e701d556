"""The catalog's services table on both engines: sync and timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker

from opsbook.catalog.models import Service
from opsbook.catalog.service import (
    InvalidServiceSpecError,
    ServiceSpec,
    SyncResult,
    list_services,
    sync_services,
)

T0 = datetime(2025, 3, 30, 0, 59, 59, 123456, tzinfo=UTC)
T1 = T0 + timedelta(hours=5, microseconds=1)


def _sync(factory: sessionmaker[Session], specs: list[ServiceSpec], at: datetime) -> SyncResult:
    with time_machine.travel(at, tick=False), factory.begin() as session:
        return sync_services(session, specs)


def test_sync_creates_updates_keeps_and_removes(session_factory: sessionmaker[Session]) -> None:
    api = ServiceSpec("api", "production", "https://api.example.com")
    worker = ServiceSpec("worker", "production")
    web = ServiceSpec("web", "staging", "https://web.example.com")

    first = _sync(session_factory, [api, worker, web], T0)
    assert first == SyncResult(created=("api", "web", "worker"))
    assert first.changed

    same = _sync(session_factory, [web, api, worker], T1)
    assert same == SyncResult(unchanged=("api", "web", "worker"))
    assert not same.changed

    moved = ServiceSpec("web", "production", None)
    billing = ServiceSpec("billing", "production", "https://billing.example.com")
    second = _sync(session_factory, [api, moved, billing], T1)
    assert second == SyncResult(
        created=("billing",), updated=("web",), unchanged=("api",), removed=("worker",)
    )

    with session_factory() as session:
        rows = {s.name: s for s in list_services(session)}
    assert list(rows) == ["api", "billing", "web"]
    assert (rows["web"].environment, rows["web"].url) == ("production", None)
    assert (rows["web"].created_at, rows["web"].updated_at) == (T0, T1)
    assert (rows["api"].created_at, rows["api"].updated_at) == (T0, T0)  # unchanged: untouched
    assert (rows["billing"].created_at, rows["billing"].updated_at) == (T1, T1)


def test_sync_to_nothing_removes_everything(session_factory: sessionmaker[Session]) -> None:
    _sync(session_factory, [ServiceSpec("api", "production")], T0)
    assert _sync(session_factory, [], T1) == SyncResult(removed=("api",))
    with session_factory() as session:
        assert list_services(session) == []


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([ServiceSpec("api", "prod"), ServiceSpec("api", "staging")], "more than once: api"),
        ([ServiceSpec(" ", "prod")], "name is empty"),
        ([ServiceSpec("api", "")], "environment is empty"),
        ([ServiceSpec("x" * 256, "prod")], "name is longer than 255"),
    ],
)
def test_invalid_specs_change_nothing(
    session_factory: sessionmaker[Session], specs: list[ServiceSpec], message: str
) -> None:
    _sync(session_factory, [ServiceSpec("keep", "production")], T0)
    with pytest.raises(InvalidServiceSpecError, match=message), session_factory.begin() as session:
        sync_services(session, specs)
    with session_factory() as session:
        assert [s.name for s in list_services(session)] == ["keep"]


def test_timestamps_round_trip_as_aware_utc(session_factory: sessionmaker[Session]) -> None:
    # Stored from a +02:00 time; read back in a session whose own time zone is not UTC.
    local = datetime(2024, 10, 27, 2, 30, 15, 654321, tzinfo=timezone(timedelta(hours=2)))
    with session_factory.begin() as session:
        session.add(Service(name="api", environment="prod", created_at=local, updated_at=local))
    with session_factory() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SET TIME ZONE 'America/St_Johns'"))  # UTC-02:30 / -03:30
        service = session.scalars(select(Service)).one()
        for value in (service.created_at, service.updated_at):
            assert value == local
            assert value.tzinfo is UTC
            assert value.isoformat() == "2024-10-27T00:30:15.654321+00:00"
        [read] = list_services(session)
        assert read.created_at.tzinfo is UTC
        assert read.created_at == local


def test_naive_datetimes_are_refused(session_factory: sessionmaker[Session]) -> None:
    naive = datetime(2024, 1, 1, 12, 0)
    with pytest.raises(StatementError, match="naive datetime"), session_factory.begin() as s:
        s.add(Service(name="api", environment="prod", created_at=naive, updated_at=naive))
