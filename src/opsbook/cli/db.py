"""`opsbook db`: create and upgrade opsbook's relational database."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from opsbook.store import DatabaseStatus, StoreError, UpgradeResult

app = typer.Typer(
    help="Create and upgrade opsbook's database (SQLite by default, PostgreSQL to scale).",
    no_args_is_help=True,
)

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Database URL. Default: $OPSBOOK_DATABASE_URL, else sqlite:///.opsbook/opsbook.db.",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    str | None,
    typer.Option(
        "--config",
        help="opsbook.yaml whose storage section is used when neither --database-url nor "
        "$OPSBOOK_DATABASE_URL is set. Default: $OPSBOOK_CONFIG, else ./opsbook.yaml if present.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
NONE = "<none>"
Result = TypeVar("Result")


@app.command("upgrade")
def upgrade(
    revision: Annotated[str, typer.Option("--revision", help="Revision to upgrade to.")] = "head",
    database_url: DatabaseUrlOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create the database or bring its tables up to date. Safe to run on every deploy."""
    # Imported here: SQLAlchemy and Alembic take most of a second to import, and every other
    # opsbook command would pay for it.
    from opsbook.store import upgrade_database

    result = _with_engine(database_url, config, lambda engine: upgrade_database(engine, revision))
    if as_json:
        _print_json(_upgrade_json(result))
    elif result.changed:
        typer.echo(
            f"upgraded {result.url} from {result.from_revision or NONE} to "
            f"{result.to_revision or NONE}"
        )
    else:
        typer.echo(f"{result.url} is already at {result.to_revision or NONE}; nothing to do")


@app.command("current")
def current(
    database_url: DatabaseUrlOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show which schema revision the database is at."""
    from opsbook.store import database_status

    status = _with_engine(database_url, config, database_status)
    if as_json:
        _print_json(_status_json(status))
    else:
        typer.echo(_status_text(status))


def _status_text(status: DatabaseStatus) -> str:
    at = f"{status.url} is at {status.current or NONE}"
    if status.up_to_date:
        return f"{at} (head)"
    if not status.known:
        return f"{at}, a revision this opsbook does not know (newest it knows: {status.head})"
    return f"{at}; head is {status.head}, run `opsbook db upgrade`"


def _with_engine(
    database_url: str | None, config: str | None, work: Callable[[Engine], Result]
) -> Result:
    """Run `work` on an engine for the chosen database; store errors end the command cleanly."""
    from opsbook.store import StoreError, create_store_engine

    try:
        engine = create_store_engine(_database_url(database_url, config))
        try:
            return work(engine)
        finally:
            engine.dispose()
    except StoreError as exc:
        _fail(exc)


def _database_url(explicit: str | None, config: str | None) -> str:
    """--database-url, else $OPSBOOK_DATABASE_URL, else the config file's storage section."""
    from opsbook.config import ConfigError, OpsbookConfig, default_config_path, load_config
    from opsbook.store.runtime import database_url_for

    path = Path(config or default_config_path())
    if config is None and not path.exists():
        return database_url_for(OpsbookConfig(), None, explicit)
    try:
        return database_url_for(load_config(path), path, explicit)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


def _upgrade_json(result: UpgradeResult) -> dict[str, Any]:
    return {
        "database_url": result.url,
        "from_revision": result.from_revision,
        "to_revision": result.to_revision,
        "changed": result.changed,
    }


def _status_json(status: DatabaseStatus) -> dict[str, Any]:
    return {
        "database_url": status.url,
        "current": status.current,
        "head": status.head,
        "up_to_date": status.up_to_date,
        "known": status.known,
    }


def _print_json(payload: dict[str, Any]) -> None:
    typer.echo(json.dumps(payload))


def _fail(exc: StoreError) -> NoReturn:
    # One line, no traceback: the message already names the (masked) URL and the remedy.
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(1)
