"""``opsbook serve``: the control plane's HTTP server (the metrics engine so far)."""

from opsbook.server.app import MetricsEngine, create_app

__all__ = ["MetricsEngine", "create_app"]
