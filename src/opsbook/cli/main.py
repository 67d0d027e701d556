"""Entry point of the `opsbook` command: assembles the command groups."""

from __future__ import annotations

import typer

from opsbook import __version__
from opsbook.cli import config as config_cmd
from opsbook.cli import db as db_cmd
from opsbook.cli import metrics as metrics_cmd
from opsbook.cli import promql as promql_cmd
from opsbook.cli import serve as serve_cmd
from opsbook.cli import status as status_cmd

app = typer.Typer(
    name="opsbook",
    help="The production runbook, as software.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(config_cmd.app, name="config")
app.add_typer(db_cmd.app, name="db")
app.add_typer(promql_cmd.app, name="promql")
metrics_cmd.register(app)
serve_cmd.register(app)
status_cmd.register(app)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"opsbook {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        callback=_print_version,
        is_eager=True,
    ),
) -> None:
    """The production runbook, as software."""


def run() -> None:
    app()
