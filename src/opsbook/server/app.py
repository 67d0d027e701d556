"""The FastAPI app of ``opsbook serve``: the metrics engine (scraper, store, query API), the
database, and the prober (service status and uptime).

Step 7 adds the rest of the control plane (rules, notifications, incidents, UI, auth) to this
same app.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from opsbook import __version__
from opsbook.catalog.service import service_specs, sync_services
from opsbook.config import OpsbookConfig
from opsbook.metrics.backends import EmbeddedBackend
from opsbook.metrics.embedded import EmbeddedStore
from opsbook.metrics.query import MetricsBackend
from opsbook.metrics.runtime import engine_options, open_embedded_store, prometheus_backend
from opsbook.metrics.scrape import Scraper, targets_from_config
from opsbook.metrics.store_api import SampleStore
from opsbook.metrics.views import query_api_router, targets_router
from opsbook.probes.prober import Prober, ProbeStatus
from opsbook.probes.runtime import prober_for
from opsbook.probes.service import StoredProbe
from opsbook.probes.views import status_router
from opsbook.store.runtime import open_database

log = structlog.get_logger("opsbook.server")


@dataclass
class MetricsEngine:
    """What ``opsbook serve`` runs for metrics: store, scraper and the backend queries use.

    With ``metrics.backend: prometheus`` there is no local store and no scraper: that server
    scrapes, opsbook only queries it.
    """

    config: OpsbookConfig
    config_path: Path | None
    store: EmbeddedStore | None = None
    scraper: Scraper | None = None
    backend: MetricsBackend | None = field(default=None)

    async def start(self) -> None:
        if self.config.metrics.backend == "prometheus":
            self.backend = prometheus_backend(self.config)
            return
        # Opening replays nothing heavy, but it is file I/O: keep it off the event loop.
        self.store = await asyncio.to_thread(open_embedded_store, self.config, self.config_path)
        self.backend = EmbeddedBackend(self.store, engine_options(self.config.metrics))
        targets = targets_from_config(self.config)
        self.scraper = Scraper(self.store, targets, self.config.metrics.limits)
        await self.scraper.start()
        log.info("metrics engine started", store=str(self.store.path), targets=len(targets))

    def current_backend(self) -> MetricsBackend:
        if self.backend is None:
            raise RuntimeError("the metrics engine has not started")
        return self.backend

    async def stop(self) -> None:
        # The scraper writes its last stale markers before the store flushes and closes.
        if self.scraper is not None:
            await self.scraper.stop()
        if self.backend is not None:
            await self.backend.close()
        log.info("metrics engine stopped")


@dataclass
class ProbeEngine:
    """The database and the prober: service status, probe states and uptime history."""

    config: OpsbookConfig
    config_path: Path | None
    database: Engine | None = None
    sessions: sessionmaker[Session] | None = None
    prober: Prober | None = None

    async def start(self, store: SampleStore | None) -> None:
        self.database, self.sessions = await asyncio.to_thread(
            open_database, self.config, self.config_path
        )
        await asyncio.to_thread(self._sync_catalog)
        self.prober = prober_for(self.config, store, self.sessions)
        await self.prober.start()

    def _sync_catalog(self) -> None:
        assert self.sessions is not None
        with self.sessions.begin() as session:
            sync_services(session, service_specs(self.config))

    def statuses(self) -> list[ProbeStatus]:
        return self.prober.statuses() if self.prober is not None else []

    def live_states(self) -> dict[tuple[str, str], StoredProbe]:
        return self.prober.live_states() if self.prober is not None else {}

    async def stop(self) -> None:
        # The prober writes its last samples and states before the stores close.
        if self.prober is not None:
            await self.prober.stop()
        if self.database is not None:
            self.database.dispose()


def create_app(config: OpsbookConfig, config_path: Path | None = None) -> FastAPI:
    engine = MetricsEngine(config, config_path)
    probes = ProbeEngine(config, config_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await engine.start()
        try:
            await probes.start(engine.store)
            try:
                yield
            finally:
                await probes.stop()
        finally:
            await engine.stop()

    app = FastAPI(title="opsbook", version=__version__, lifespan=lifespan)
    app.state.metrics = engine
    app.state.probes = probes
    app.include_router(query_api_router(engine.current_backend))
    app.include_router(targets_router(lambda: engine.scraper.statuses() if engine.scraper else []))
    app.include_router(
        status_router(lambda: config, lambda: probes.sessions, probes.statuses, probes.live_states)
    )

    @app.get("/-/healthy", include_in_schema=False)
    async def healthy() -> dict[str, str]:
        return {"status": "pass"}

    return app
