"""Alembic environment: migrates the connection opsbook hands over in `config.attributes`."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection

from opsbook.store.base import UTCDateTime
from opsbook.store.registry import load_metadata


def _render_item(type_: str, obj: Any, _autogen: AutogenContext) -> str | Literal[False]:
    # Migrations are frozen history: spell the column type out instead of importing our type.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations(connection: Connection) -> None:
    # No version_table_schema: alembic_version goes wherever unqualified tables go, i.e. the
    # first schema of the connection's search_path on PostgreSQL (not necessarily `public`).
    context.configure(
        connection=connection,
        target_metadata=load_metadata(),
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("opsbook does not generate offline SQL scripts; run `opsbook db upgrade`")

_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise RuntimeError(
        "opsbook migrations run through `opsbook db upgrade` "
        "(or opsbook.store.upgrade_database), which passes the connection to migrate"
    )
run_migrations(_connection)
