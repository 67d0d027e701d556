"""Engines: SQLite pragmas, PostgreSQL pool settings, the SQLite folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text

from opsbook.store import create_store_engine, database_status, upgrade_database


def _pragma(conn: Connection, name: str) -> object:
    return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_sqlite_pragmas_on_every_connection(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        # Two connections open at once: the pool must create (and configure) both.
        with engine.connect() as first, engine.connect() as second:
            for conn in (first, second):
                assert _pragma(conn, "journal_mode") == "wal"
                assert _pragma(conn, "foreign_keys") == 1
                assert _pragma(conn, "busy_timeout") == 5000
                assert _pragma(conn, "synchronous") == 1  # NORMAL
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_engine_pings_before_use(postgres_schema_url: str) -> None:
    engine = create_store_engine(postgres_schema_url)
    try:
        assert engine.dialect.driver == "psycopg"
        assert engine.pool._pre_ping is True
        with engine.connect() as conn:
            assert conn.execute(text("select 1")).scalar() == 1
    finally:
        engine.dispose()


def test_sqlite_folder_is_created_on_first_connection_only(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "ops.db"
    engine = create_store_engine(f"sqlite:///{db}")
    try:
        status = database_status(engine)  # reading the status must not create anything
        assert status.current is None
        assert not db.parent.exists()
        upgrade_database(engine)
        assert db.is_file()
    finally:
        engine.dispose()


def test_sqlite_foreign_keys_back_on_after_upgrade(tmp_path: Path) -> None:
    # Migrations turn foreign keys off on their connection; the pool hands it out again.
    engine = create_store_engine(f"sqlite:///{tmp_path / 'fk.db'}")
    try:
        upgrade_database(engine)
        assert engine.pool.checkedin() == 1  # the migration's connection, reused next
        with engine.connect() as conn:
            assert _pragma(conn, "foreign_keys") == 1
    finally:
        engine.dispose()


def test_status_and_upgrade_report_revisions(migrated_engine: Engine) -> None:
    status = database_status(migrated_engine)
    assert (status.current, status.head, status.up_to_date, status.known) == (
        "0002_probes",
        "0002_probes",
        True,
        True,
    )
    again = upgrade_database(migrated_engine)
    assert (again.from_revision, again.to_revision, again.changed) == (
        "0002_probes",
        "0002_probes",
        False,
    )
