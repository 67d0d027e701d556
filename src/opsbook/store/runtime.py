"""The relational store ``opsbook.yaml`` asks for: which URL, relative to which file."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from opsbook.config import OpsbookConfig
from opsbook.store.urls import ENV_VAR, choose_database_url


def database_url_for(
    config: OpsbookConfig, config_path: Path | None, explicit: str | None = None
) -> str:
    """``explicit``, else $OPSBOOK_DATABASE_URL, else ``storage.database_url``, else the SQLite
    file in ``storage.data_dir`` — relative to the config file, so commands work from anywhere."""
    storage = config.storage
    configured = None if storage.database_url is None else storage.database_url.get_secret_value()
    data_dir = Path(storage.data_dir)
    if config_path is not None:
        data_dir = config_path.parent / data_dir
    return choose_database_url(explicit, os.environ.get(ENV_VAR), configured, data_dir)


def open_database(
    config: OpsbookConfig, config_path: Path | None, *, upgrade: bool = True
) -> tuple[Engine, sessionmaker[Session]]:
    """The configured database, its tables brought up to date (``upgrade``), and sessions.

    Blocking: servers call it in a worker thread. The caller disposes of the engine.
    """
    from opsbook.store.engine import create_session_factory, create_store_engine
    from opsbook.store.migrate import upgrade_database

    engine = create_store_engine(database_url_for(config, config_path))
    try:
        if upgrade:
            upgrade_database(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine, create_session_factory(engine)
