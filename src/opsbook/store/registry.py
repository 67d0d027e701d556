"""Which modules define tables: Alembic's autogenerate and the schema check need all of them."""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from opsbook.store.base import Base

# Add a domain's `models` module here when it gains tables. Imported by name so that the store
# does not depend on the domains at import time (they depend on it).
MODEL_MODULES: tuple[str, ...] = ("opsbook.catalog.models", "opsbook.probes.models")


def load_metadata() -> MetaData:
    """The metadata of every opsbook table."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return Base.metadata
