"""API routes of the probes: ``/api/v1/status`` (services) and ``/api/v1/probes`` (live)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy.orm import Session, sessionmaker

from opsbook.config import OpsbookConfig
from opsbook.probes.prober import ProbeStatus
from opsbook.probes.service import StoredProbe
from opsbook.probes.status import iso, read_status, report_json


def status_router(
    config: Callable[[], OpsbookConfig],
    sessions: Callable[[], sessionmaker[Session] | None],
    probes: Callable[[], list[ProbeStatus]],
    live: Callable[[], Mapping[tuple[str, str], StoredProbe]],
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["status"])

    @router.get("/status")
    async def status(
        service: Annotated[list[str] | None, Query(description="Only these services.")] = None,
    ) -> dict[str, Any]:
        """Each service's state, since when, uptime over 24h…1y, and what is failing."""
        factory = sessions()
        if factory is None:
            raise HTTPException(503, "the server is starting; try again in a moment")
        settings = config()
        wanted = service or []
        unknown = sorted(set(wanted) - {s.name for s in settings.services})
        if unknown:
            raise HTTPException(404, f"no service named {', '.join(map(repr, unknown))}")

        current = live()

        def read() -> list[dict[str, Any]]:
            with factory() as session:
                reports = read_status(session, settings, time.time(), wanted, current)
            return [report_json(r) for r in reports]

        return {"status": "success", "data": await asyncio.to_thread(read)}

    @router.get("/probes")
    async def probe_list() -> dict[str, Any]:
        """Every probe with its live state and last attempt."""
        return {"status": "success", "data": [_probe_json(p) for p in probes()]}

    return router


def _probe_json(status: ProbeStatus) -> dict[str, Any]:
    spec, state, last = status.spec, status.state, status.last
    return {
        "service": spec.service,
        "name": spec.name,
        "type": spec.kind,
        "instance": spec.instance,
        "critical": spec.critical,
        "interval_seconds": spec.interval_s,
        "timeout_seconds": spec.timeout_s,
        "failure_threshold": spec.failure_threshold,
        "success_threshold": spec.success_threshold,
        "state": state.state,
        "since": iso(state.since),
        "consecutive_failures": state.failures,
        "consecutive_successes": state.successes,
        "last_checked": iso(state.last_at),
        "last_success": None if last is None else last.success,
        "last_error": None if last is None else last.error,
        "last_duration_seconds": None if last is None else last.duration_s,
        "status_code": None if last is None else last.status_code,
        "health_status": None if last is None else last.health_status,
    }
