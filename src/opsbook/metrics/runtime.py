"""From ``opsbook.yaml`` to a running metrics engine: store path, engine limits, backend.

The CLI (``opsbook query``, ``opsbook import``) and the server build their store and backend
here, so every entry point reads the same file from the same place with the same limits.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from opsbook.config import OpsbookConfig
from opsbook.config.models import MetricsConfig
from opsbook.metrics.backends import EmbeddedBackend, PrometheusBackend
from opsbook.metrics.embedded import EmbeddedStore
from opsbook.metrics.promql import EngineOptions
from opsbook.metrics.query import MetricsBackend

METRICS_STORE_FILE = "metrics.duckdb"


def _ms(value: timedelta) -> int:
    return round(value.total_seconds() * 1000)


def engine_options(metrics: MetricsConfig) -> EngineOptions:
    """The PromQL engine limits configured under ``metrics.query``."""
    limits = metrics.query
    return EngineOptions(
        lookback_ms=_ms(limits.lookback_delta),
        max_samples=limits.max_samples,
        timeout_s=limits.timeout.total_seconds(),
    )


def data_dir(config: OpsbookConfig, config_path: Path | None) -> Path:
    """``storage.data_dir``, relative to the config file so commands work from any directory."""
    base = config_path.parent if config_path is not None else Path.cwd()
    return base / config.storage.data_dir


def metrics_store_path(config: OpsbookConfig, config_path: Path | None) -> Path:
    return data_dir(config, config_path) / METRICS_STORE_FILE


def open_embedded_store(
    config: OpsbookConfig, config_path: Path | None, *, keep_forever: bool = False
) -> EmbeddedStore:
    """Open (creating if needed) the embedded store with the configured retention.

    ``keep_forever`` disables retention for this handle: a backfill of old samples must not
    see them deleted by the store's own maintenance while it is still writing.
    """
    retention = None if keep_forever else config.metrics.retention
    return EmbeddedStore.open(metrics_store_path(config, config_path), retention=retention)


def prometheus_backend(config: OpsbookConfig, url: str | None = None) -> PrometheusBackend:
    base = url or (str(config.metrics.prometheus_url) if config.metrics.prometheus_url else None)
    if base is None:
        raise ValueError("no Prometheus URL: set metrics.prometheus_url or pass one")
    return PrometheusBackend(base, timeout_s=config.metrics.query.timeout.total_seconds())


def backend_for(
    config: OpsbookConfig, config_path: Path | None, *, url: str | None = None
) -> MetricsBackend:
    """The backend the config asks for; ``url`` forces a remote Prometheus-compatible API.

    The caller closes it (``await backend.close()``), which closes an embedded store too.
    """
    if url is not None or config.metrics.backend == "prometheus":
        return prometheus_backend(config, url)
    store = open_embedded_store(config, config_path)
    return EmbeddedBackend(store, engine_options(config.metrics))
