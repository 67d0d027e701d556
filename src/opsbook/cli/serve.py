"""``opsbook serve``: the control plane in one process — for now the scraper, the embedded store
and the Prometheus-compatible query API (``/api/v1/query`` ...), which Grafana can use."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from opsbook.cli.metrics import ConfigOption, _load


def serve(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8080,
    log_level: Annotated[
        str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")
    ] = "INFO",
) -> None:
    """Run the scraper, the metrics store and the query API until Ctrl-C or SIGTERM."""
    import uvicorn

    from opsbook import __version__
    from opsbook.instrument.logging import configure_logging
    from opsbook.server import create_app

    settings, path = _load(config)
    try:
        configure_logging(
            service="opsbook", version=__version__, environment="production", level=log_level
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    # httpx logs every request with its URL at INFO; scrape URLs may carry credentials.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app = create_app(settings, path)
    # uvicorn handles SIGINT/SIGTERM: the lifespan then stops the scraper and flushes the store.
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
