"""Storage fixtures: every storage test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from opsbook.store import create_session_factory, create_store_engine, upgrade_database

RunCli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_store_engine(database_url)
    yield engine
    engine.dispose()  # before the schema fixture drops the schema


@pytest.fixture
def migrated_engine(engine: Engine) -> Engine:
    upgrade_database(engine)
    return engine


@pytest.fixture
def session_factory(migrated_engine: Engine) -> sessionmaker[Session]:
    return create_session_factory(migrated_engine)


@pytest.fixture
def run_cli() -> RunCli:
    """Run `python -m opsbook ARGS` without the developer's OPSBOOK_DATABASE_URL."""

    def run(
        *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if k != "OPSBOOK_DATABASE_URL"}
        environ.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "opsbook", *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=environ,
            timeout=120,
            check=False,
        )

    return run
