"""The catalog's services table on both engines: sync and timestamps."""

from __future__ import annotations

from dataclasses import replace
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
    service_specs,
    sync_services,
)
from opsbook.config import OpsbookConfig

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
        ([ServiceSpec("api", "prod", owner="o" * 256)], "owner is longer than 255"),
        ([ServiceSpec("api", "prod", team="t" * 256)], "team is longer than 255"),
        ([ServiceSpec("api", "prod", tier="t" * 65)], "tier is longer than 64"),
        (
            [ServiceSpec("api", "prod", links=(("docs", "https://a"), ("docs", "https://b")))],
            "link listed more than once: docs",
        ),
        (
            [ServiceSpec("api", "prod", dependencies=("db", "cache", "db"))],
            "dependency listed more than once: db",
        ),
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


FULL = ServiceSpec(
    "api",
    "production",
    "https://api.example.com",
    description="The public API.\nServes the mobile apps.",
    owner="alice@example.com",
    team="platform",
    tier="1",
    public=True,
    links=(("runbook", "https://wiki/runbook"), ("dashboard", "https://grafana/d/api")),
    dependencies=("db", "cache"),
)


def test_catalog_fields_round_trip(session_factory: sessionmaker[Session]) -> None:
    plain = ServiceSpec("worker", "production")
    assert _sync(session_factory, [FULL, plain], T0) == SyncResult(created=("api", "worker"))
    assert FULL in {FULL}  # specs stay hashable
    with session_factory() as session:
        api, worker = list_services(session)
    assert api.description == "The public API.\nServes the mobile apps."
    assert (api.owner, api.team, api.tier, api.public) == (
        "alice@example.com",
        "platform",
        "1",
        True,
    )
    assert api.links == {"runbook": "https://wiki/runbook", "dashboard": "https://grafana/d/api"}
    assert list(api.links) == ["runbook", "dashboard"]  # in the configured order
    assert api.dependencies == ["db", "cache"]
    assert (worker.description, worker.owner, worker.team, worker.tier) == (None,) * 4
    assert (worker.public, worker.links, worker.dependencies) == (False, {}, [])


@pytest.mark.parametrize(
    "changed",
    [
        replace(FULL, description=None),
        replace(FULL, owner="bob@example.com"),
        replace(FULL, team=None),
        replace(FULL, tier="2"),
        replace(FULL, public=False),
        replace(FULL, links=(("runbook", "https://wiki/runbook-v2"),)),
        replace(FULL, links=tuple(reversed(FULL.links))),  # reordered only
        replace(FULL, links=()),
        replace(FULL, dependencies=("cache", "db")),
        replace(FULL, dependencies=("db", "cache", "queue")),
        replace(FULL, dependencies=()),
    ],
)
def test_each_catalog_field_change_is_an_update(
    session_factory: sessionmaker[Session], changed: ServiceSpec
) -> None:
    _sync(session_factory, [FULL], T0)
    assert _sync(session_factory, [FULL], T1) == SyncResult(unchanged=("api",))
    assert _sync(session_factory, [changed], T1) == SyncResult(updated=("api",))
    with session_factory() as session:
        [api] = list_services(session)
    assert api.updated_at == T1
    expected = (
        changed.description,
        changed.owner,
        changed.team,
        changed.tier,
        changed.public,
        list(changed.links),
        list(changed.dependencies),
    )
    stored = (
        api.description,
        api.owner,
        api.team,
        api.tier,
        api.public,
        list(api.links.items()),
        api.dependencies,
    )
    assert stored == expected
    # Read back as stored, the spec is now unchanged.
    assert _sync(session_factory, [changed], T1) == SyncResult(unchanged=("api",))


def test_specs_from_the_config() -> None:
    config = OpsbookConfig.model_validate(
        {
            "services": [
                {
                    "name": "api",
                    "url": "https://api.example.com",
                    "description": "The public API.",
                    "owner": "alice@example.com",
                    "team": "platform",
                    "tier": 1,
                    "public": True,
                    "links": {"runbook": "https://wiki/runbook", "chat": "https://chat/api"},
                    "dependencies": ["db"],
                },
                {"name": "db", "environment": "staging"},
            ]
        }
    )
    api, db = service_specs(config)
    assert api == ServiceSpec(
        "api",
        "production",
        "https://api.example.com",
        description="The public API.",
        owner="alice@example.com",
        team="platform",
        tier="1",
        public=True,
        links=(("runbook", "https://wiki/runbook"), ("chat", "https://chat/api")),
        dependencies=("db",),
    )
    assert db == ServiceSpec("db", "staging")
