"""The embedded metrics store: samples in one local DuckDB file (``MetricsBackend`` "embedded")."""

from opsbook.metrics.embedded.lock import MetricsStoreError, StoreInUseError
from opsbook.metrics.embedded.store import EmbeddedStore, StoreStats

__all__ = ["EmbeddedStore", "MetricsStoreError", "StoreInUseError", "StoreStats"]
