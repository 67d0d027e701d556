"""Schema migrations: Alembic, configured in code so it works from an installed wheel."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from opsbook.store.errors import DatabaseUnavailableError, MigrationError
from opsbook.store.urls import mask_database_url, redact, sqlite_file_path

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# PostgreSQL advisory lock held while migrating ("opsbook" in ASCII).
MIGRATION_LOCK_KEY = 0x6F7073626F6F6B


@dataclass(frozen=True, slots=True)
class UpgradeResult:
    url: str  # masked
    from_revision: str | None
    to_revision: str | None

    @property
    def changed(self) -> bool:
        return self.from_revision != self.to_revision


@dataclass(frozen=True, slots=True)
class DatabaseStatus:
    url: str  # masked
    current: str | None
    head: str
    known: bool  # False when the database is at a revision this opsbook does not ship

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration without an alembic.ini; env.py migrates `connection`."""
    config = Config()
    # ConfigParser interpolates `%`; a path may contain one.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(rev)s")  # versions/0002_incidents.py
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = script_directory().get_current_head()
    if head is None:  # a packaging error, not something a user can cause
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def is_known_revision(revision: str) -> bool:
    try:
        return script_directory().get_revision(revision) is not None
    except CommandError:
        return False


def database_status(engine: Engine) -> DatabaseStatus:
    """Which revision the database is at, compared with the newest this opsbook ships."""
    url = _masked(engine)
    head = head_revision()
    path = sqlite_file_path(engine.url.render_as_string(hide_password=False))
    if path is not None and not path.exists():
        # Report without connecting: connecting would create an empty database file.
        return DatabaseStatus(url=url, current=None, head=head, known=True)
    with _connect(engine) as connection:
        current = _current_revision(connection, engine)
    known = current is None or is_known_revision(current)
    return DatabaseStatus(url=url, current=current, head=head, known=known)


def upgrade_database(engine: Engine, revision: str = "head") -> UpgradeResult:
    """Apply the migrations up to `revision`; a database already there is left untouched.

    Safe to run from several processes at once on PostgreSQL, but not from several threads of
    one process: Alembic keeps its migration context in a process-wide global.
    """
    url = _masked(engine)
    with _connect(engine) as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite batch migrations copy a table and drop the original; with foreign keys on,
            # that drop would cascade into, or fail on, the rows that reference it.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    # Replicas that all upgrade on start take turns; the later ones find the
                    # work done instead of failing on tables that already exist.
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                    )
                before = MigrationContext.configure(connection).get_current_revision()
                if before is not None and not is_known_revision(before):
                    raise MigrationError(
                        f"the database at {url} is at revision {before!r}, which this opsbook "
                        "version does not know (was it upgraded by a newer opsbook?); "
                        "upgrade opsbook"
                    )
                command.upgrade(alembic_config(connection), revision)
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise MigrationError(
                        f"upgrading {url} to {revision} left rows whose foreign keys point "
                        "nowhere; please report this as an opsbook bug"
                    )
                after = MigrationContext.configure(connection).get_current_revision()
        except CommandError as exc:
            raise MigrationError(f"cannot upgrade {url} to {revision!r}: {exc}") from None
        except DBAPIError as exc:
            raise MigrationError(
                f"upgrading {url} to {revision!r} failed: {_reason(exc, engine)}"
            ) from None
        finally:
            if sqlite and not connection.invalidated:
                # The connection goes back to the pool; it must not keep foreign keys off.
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()
    return UpgradeResult(url=url, from_revision=before, to_revision=after)


def _masked(engine: Engine) -> str:
    return mask_database_url(engine.url.render_as_string(hide_password=False))


@contextmanager
def _connect(engine: Engine) -> Iterator[Connection]:
    """`engine.connect()`, turning a failure to connect into a one-line user error."""
    try:
        connection = engine.connect()
    except DBAPIError as exc:
        what = (
            "that the folder exists and is writable"
            if engine.dialect.name == "sqlite"
            else "that the server is running and that the URL is right"
        )
        raise DatabaseUnavailableError(
            f"cannot connect to the database at {_masked(engine)} ({_reason(exc, engine)}); "
            f"check {what} (--database-url or OPSBOOK_DATABASE_URL)"
        ) from None
    except OSError as exc:  # the SQLite file's folder could not be created
        raise DatabaseUnavailableError(
            f"cannot open the database at {_masked(engine)} "
            f"({exc.strerror}: {exc.filename}); choose a writable location with --database-url"
        ) from None
    with connection:
        yield connection


def _current_revision(connection: Connection, engine: Engine) -> str | None:
    try:
        revision = MigrationContext.configure(connection).get_current_revision()
    except DBAPIError as exc:
        raise DatabaseUnavailableError(
            f"cannot read the schema revision of {_masked(engine)}: {_reason(exc, engine)}"
        ) from None
    connection.rollback()  # leave no read transaction open
    return revision


def _reason(exc: DBAPIError, engine: Engine) -> str:
    """The driver's first line of explanation, with any password removed."""
    original = exc.orig if exc.orig is not None else exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    reason = lines[0] if lines else type(original).__name__
    return redact(reason, engine.url.render_as_string(hide_password=False))[:300]
