"""One open store per file: across processes (DuckDB's file lock) and inside this process.

DuckDB locks the file against other processes, but its POSIX lock does not stop a second
connection from the same process, and two writers in one process would corrupt the file; so
this process also keeps a registry of the stores it has open.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path


class MetricsStoreError(Exception):
    """The metrics store cannot be used; ``str(error)`` is the message to show the user."""


class StoreInUseError(MetricsStoreError):
    pass


_open_paths: set[Path] = set()
_registry_lock = threading.Lock()


def claim(path: Path) -> Path:
    """Register ``path`` as open in this process; raise when it already is."""
    key = path.resolve()
    with _registry_lock:
        if key in _open_paths:
            raise StoreInUseError(
                f"the metrics store {path} is already open in this process; "
                "use the open store instead of opening the file again"
            )
        _open_paths.add(key)
    return key


def release(key: Path) -> None:
    with _registry_lock:
        _open_paths.discard(key)


_PID = re.compile(r"PID (\d+)")


def in_use_error(path: Path, duckdb_message: str) -> StoreInUseError | None:
    """The user-facing error for DuckDB's lock conflict, or None for other messages."""
    if "lock" not in duckdb_message.lower():
        return None
    pid = _PID.search(duckdb_message)
    holder = f"another process (PID {pid.group(1)})" if pid else "another process"
    return StoreInUseError(
        f"the metrics store {path} is in use by {holder}; stop that process, or give this one "
        "its own storage.data_dir, and try again"
    )
