"""opsbook's relational store: SQLAlchemy base and types, engines, sessions, migrations.

Typical use::

    engine = create_store_engine(url)          # None: $OPSBOOK_DATABASE_URL or .opsbook/opsbook.db
    upgrade_database(engine)                   # what `opsbook db upgrade` does
    Session = create_session_factory(engine)
    with Session.begin() as session:
        ...
"""

from opsbook.store.base import NAMING_CONVENTION, Base, UTCDateTime, utc_now
from opsbook.store.engine import (
    create_session_factory,
    create_store_engine,
    engine_options,
    parse_database_url,
    resolve_database_url,
)
from opsbook.store.errors import (
    DatabaseUnavailableError,
    DatabaseUrlError,
    MigrationError,
    StoreError,
)
from opsbook.store.migrate import (
    DatabaseStatus,
    UpgradeResult,
    alembic_config,
    database_status,
    head_revision,
    upgrade_database,
)
from opsbook.store.registry import MODEL_MODULES, load_metadata
from opsbook.store.urls import (
    DEFAULT_DATABASE_URL,
    ENV_VAR,
    choose_database_url,
    mask_database_url,
    normalize_database_url,
    redact,
)

__all__ = [
    "DEFAULT_DATABASE_URL",
    "ENV_VAR",
    "MODEL_MODULES",
    "NAMING_CONVENTION",
    "Base",
    "DatabaseStatus",
    "DatabaseUnavailableError",
    "DatabaseUrlError",
    "MigrationError",
    "StoreError",
    "UTCDateTime",
    "UpgradeResult",
    "alembic_config",
    "choose_database_url",
    "create_session_factory",
    "create_store_engine",
    "database_status",
    "engine_options",
    "head_revision",
    "load_metadata",
    "mask_database_url",
    "normalize_database_url",
    "parse_database_url",
    "redact",
    "resolve_database_url",
    "upgrade_database",
    "utc_now",
]
