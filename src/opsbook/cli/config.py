"""``opsbook config …``: check the configuration file."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer

from opsbook.config import ConfigError, OpsbookConfig, default_config_path, load_config

app = typer.Typer(help="Check the opsbook.yaml configuration.", no_args_is_help=True)


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


def summary(config: OpsbookConfig) -> dict[str, Any]:
    return {
        "project": config.project,
        "services": len(config.services),
        "slos": len(config.slos),
        "channels": len(config.notify.channels),
    }


def summary_line(config: OpsbookConfig) -> str:
    return ", ".join(
        [
            _plural(len(config.services), "service"),
            _plural(len(config.slos), "SLO"),
            _plural(len(config.notify.channels), "notification channel"),
        ]
    )


@app.callback()
def _group() -> None:
    """Check the opsbook.yaml configuration."""


@app.command("check")
def check(
    file: Annotated[
        str | None,
        typer.Argument(
            metavar="FILE",
            help="The configuration file. Default: $OPSBOOK_CONFIG, else ./opsbook.yaml.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")
    ] = False,
) -> None:
    """Validate the configuration file and report every problem with its line and column.

    Exit status: 0 when the file is valid, 1 when it is not.
    """
    path = file or default_config_path()
    try:
        config = load_config(path)
    except ConfigError as exc:
        if as_json:
            _print_json(path, False, [issue.to_dict() for issue in exc.issues], None)
        else:
            typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    if as_json:
        _print_json(path, True, [], summary(config))
    else:
        typer.echo(f"{path}: OK — {summary_line(config)}")


def _print_json(
    path: str, valid: bool, errors: list[dict[str, Any]], summary: dict[str, Any] | None
) -> None:
    document = {"file": path, "valid": valid, "errors": errors, "summary": summary}
    typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
