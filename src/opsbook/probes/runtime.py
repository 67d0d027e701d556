"""From ``opsbook.yaml`` to a running prober: its specs, its stores, its concurrency."""

from __future__ import annotations

import structlog
from sqlalchemy.orm import Session, sessionmaker

from opsbook.config import OpsbookConfig
from opsbook.metrics.store_api import SampleStore
from opsbook.probes.flows import DatabaseStateStore
from opsbook.probes.prober import Prober
from opsbook.probes.specs import probe_specs

log = structlog.get_logger("opsbook.probes")


def prober_for(
    config: OpsbookConfig,
    store: SampleStore | None,
    sessions: sessionmaker[Session] | None,
) -> Prober:
    """The prober of every configured probe. Without ``store`` (``metrics.backend:
    prometheus``) no samples are kept; states and uptime still are, in the database."""
    specs = probe_specs(config)
    if store is None and specs:
        log.info(
            "probe results are not stored as samples: metrics.backend is not embedded",
            probes=len(specs),
        )
    states = DatabaseStateStore(sessions) if sessions is not None else None
    return Prober(specs, store=store, states=states, concurrency=config.prober.concurrency)
