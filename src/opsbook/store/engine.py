"""Engines and sessions for opsbook's relational store (SQLite by default, PostgreSQL to scale)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from opsbook.store.errors import DatabaseUrlError
from opsbook.store.urls import (
    ENV_VAR,
    choose_database_url,
    mask_database_url,
    normalize_database_url,
    sqlite_file_path,
    url_secrets,
)

# Applied to every SQLite connection. WAL lets readers run while one writer writes; without
# busy_timeout a second writer fails at once instead of waiting; NORMAL is durable enough in WAL
# mode and much faster than FULL; SQLite leaves foreign keys off unless asked on each connection.
SQLITE_PRAGMAS: tuple[str, ...] = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
    "PRAGMA synchronous=NORMAL",
)
# Seconds; libpq would otherwise wait forever on a host that drops packets.
POSTGRES_CONNECT_TIMEOUT = 10


def resolve_database_url(
    explicit: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """The URL to use: `explicit`, else $OPSBOOK_DATABASE_URL, else `sqlite:///.opsbook/opsbook.db`."""
    env = os.environ if environ is None else environ
    return choose_database_url(explicit, env.get(ENV_VAR))


SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def parse_database_url(url: str) -> URL:
    """The SQLAlchemy URL, or a user error that does not repeat the password."""
    url = normalize_database_url(url)
    masked = mask_database_url(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # SQLAlchemy's own message quotes the whole URL, password included.
        raise DatabaseUrlError(
            f"{masked} is not a database URL; use sqlite:///path/to/file.db "
            "or postgresql://user:password@host:5432/dbname"
        ) from None
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise DatabaseUrlError(f"{masked}: opsbook supports sqlite:// and postgresql:// URLs")
    written = url_secrets(url)
    if parsed.password is not None and str(parsed.password) not in written:
        # An unencoded `@` in the password: the rest of it would be taken for the host name
        # and show up in the driver's error messages.
        raise DatabaseUrlError(
            f"{masked}: percent-encode special characters in the password (@ is %40, / is %2F, "
            ": is %3A)"
        )
    return parsed


def engine_options(url: URL) -> dict[str, Any]:
    """Keyword arguments for `create_engine`, per backend."""
    if url.get_backend_name() == "postgresql":
        options: dict[str, Any] = {"pool_pre_ping": True}  # survive server restarts and idle kills
        if "connect_timeout" not in url.query:
            options["connect_args"] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT}
        return options
    return {}


def create_store_engine(url: str | None = None) -> Engine:
    """An engine for `url` (resolved with `resolve_database_url`). Does not connect yet."""
    raw = resolve_database_url(url)
    parsed = parse_database_url(raw)
    try:
        engine = create_engine(parsed, **engine_options(parsed))
    except NoSuchModuleError:
        raise DatabaseUrlError(
            f"{mask_database_url(raw)}: unknown database driver {parsed.drivername!r}; "
            "use sqlite:// or postgresql://"
        ) from None
    except ImportError as exc:
        raise DatabaseUrlError(
            f"{mask_database_url(raw)}: the database driver is not installed ({exc.name}); "
            "for PostgreSQL use postgresql:// (opsbook ships psycopg 3)"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        _configure_sqlite(engine, raw)
    return engine


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to `engine`. Objects stay readable after commit (no lazy reload)."""
    return sessionmaker(engine, expire_on_commit=False)


def _configure_sqlite(engine: Engine, url: str) -> None:
    path = sqlite_file_path(url)

    @event.listens_for(engine, "do_connect")
    def _create_folder(*_: Any) -> None:
        # Only when a connection is really opened, so `opsbook db current` creates nothing.
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    @event.listens_for(engine, "connect")
    def _set_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()
