"""The prober's state store on the relational database, off the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from opsbook.probes import service
from opsbook.probes.service import StateChange, StoredProbe

HISTORY_KEPT_S = 400 * 86400.0
"""Service verdicts older than this are pruned: the longest uptime window is one year."""

T = TypeVar("T")


class DatabaseStateStore:
    """Probe states and service verdicts in opsbook's database (SQLite or PostgreSQL).

    SQLAlchemy sessions block, so every call runs in a worker thread, one transaction each.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    async def load(self) -> dict[tuple[str, str], StoredProbe]:
        """The stored probe states; verdicts no uptime window reaches are pruned on the way
        (verdicts only change on state changes, so once per start is plenty)."""
        before = time.time() - HISTORY_KEPT_S
        await asyncio.to_thread(self._write, lambda s: service.prune_state_history(s, before))
        return await asyncio.to_thread(self._read, service.load_probe_states)

    async def save(self, probes: Sequence[StoredProbe], changes: Sequence[StateChange]) -> None:
        def write(session: Session) -> None:
            if probes:
                service.save_probe_states(session, probes)
            for change in changes:
                service.record_service_state(session, change.service, change.state, change.at)

        await asyncio.to_thread(self._write, write)

    async def close_open(self, last_seen: Mapping[str, float]) -> None:
        def write(session: Session) -> None:
            for name, at in last_seen.items():
                service.close_open_states(session, at, [name])

        await asyncio.to_thread(self._write, write)

    async def forget_except(self, keep: set[tuple[str, str]]) -> None:
        await asyncio.to_thread(self._write, lambda s: service.delete_probe_states(s, keep))

    def _read(self, read: Callable[[Session], T]) -> T:
        with self._sessions() as session:
            return read(session)

    def _write(self, write: Callable[[Session], object]) -> None:
        with self._sessions.begin() as session:
            write(session)
