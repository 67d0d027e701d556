"""``opsbook query`` and ``opsbook import``: the metrics engine from a terminal.

``query`` evaluates PromQL against the configured backend (the embedded store, or a
Prometheus-compatible server) or, with ``--url``, against any server speaking Prometheus's query
API — a running ``opsbook serve`` included, whose store file is locked while it runs.
``import`` backfills an OpenMetrics file with its timestamps into the embedded store.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import orjson
import typer

if TYPE_CHECKING:
    from opsbook.config import OpsbookConfig
    from opsbook.metrics.query import QueryResult, QueryValue

ConfigOption = Annotated[
    str | None,
    typer.Option(
        "--config",
        "-c",
        help="opsbook.yaml to read the metrics and storage sections from. "
        "Default: $OPSBOOK_CONFIG, else ./opsbook.yaml if present, else built-in defaults.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]

_RELATIVE = re.compile(r"now(?:\s*-\s*(?P<ago>.+))?\Z")


def parse_cli_time(text: str, name: str, now_ms: int) -> int:
    """``now``, ``now-1h``, Unix seconds or RFC 3339, in milliseconds."""
    from opsbook.metrics.promjson import parse_duration, parse_time

    relative = _RELATIVE.match(text.strip())
    if relative is not None:
        ago = relative.group("ago")
        return now_ms - (parse_duration(ago.strip(), name) if ago else 0)
    return parse_time(text, name)


def _load(config: str | None) -> tuple[OpsbookConfig, Path | None]:
    from opsbook.config import ConfigError, OpsbookConfig, default_config_path, load_config

    path = Path(config or default_config_path())
    if config is None and not path.exists():
        return OpsbookConfig(), None
    try:
        return load_config(path), path
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


def _fail(message: str, as_json: bool, kind: str = "execution") -> NoReturn:
    if as_json:
        typer.echo(orjson.dumps({"status": "error", "errorType": kind, "error": message}).decode())
    else:
        typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def format_result(value: QueryValue) -> list[str]:
    """Lines as ``promtool query`` prints them: ``series => value @[unix seconds]``."""
    from opsbook.metrics.model import format_labels
    from opsbook.metrics.promjson import format_timestamp, format_value
    from opsbook.metrics.query import Matrix, Scalar, String, Vector

    if isinstance(value, Scalar):
        return [f"scalar: {format_value(value.value)} @[{format_timestamp(value.t_ms)}]"]
    if isinstance(value, String):
        return [f"string: {value.value} @[{format_timestamp(value.t_ms)}]"]
    if isinstance(value, Vector):
        return [
            f"{format_labels(s.labels)} => {format_value(s.value)} @[{format_timestamp(s.t_ms)}]"
            for s in value.samples
        ]
    assert isinstance(value, Matrix)
    lines: list[str] = []
    for series in value.series:
        lines.append(f"{format_labels(series.labels)} =>")
        lines.extend(
            f"{format_value(float(v))} @[{format_timestamp(int(t))}]"
            for t, v in zip(series.timestamps, series.values, strict=True)
        )
    return lines


def query(
    expr: Annotated[str, typer.Argument(metavar="EXPR", help="The PromQL expression.")],
    at: Annotated[
        str | None,
        typer.Option(
            "--time",
            help="Evaluation time of an instant query: now, now-1h, Unix seconds or RFC 3339.",
            show_default="now",
        ),
    ] = None,
    range_: Annotated[
        tuple[str, str, str] | None,
        typer.Option(
            "--range",
            metavar="START END STEP",
            help="Run a range query instead, e.g. --range now-1h now 1m.",
            show_default=False,
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Query this Prometheus-compatible API (a running opsbook serve, Prometheus, "
            "VictoriaMetrics...) instead of the configured backend.",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate a PromQL expression and print the result.

    Output lines are `series => value @[time]`, as promtool prints them; --json prints the
    Prometheus API response. Exit status: 0 on success, 1 on any error.
    """
    from opsbook.metrics.embedded import MetricsStoreError
    from opsbook.metrics.promjson import encode_result, parse_duration
    from opsbook.metrics.query import BadQueryRequest, QueryError
    from opsbook.metrics.runtime import backend_for

    loaded, path = _load(config)
    now_ms = round(time.time() * 1000)
    try:
        if range_ is not None and at is not None:
            raise BadQueryRequest("give either --time or --range, not both")
        if range_ is not None:
            start = parse_cli_time(range_[0], "start", now_ms)
            end = parse_cli_time(range_[1], "end", now_ms)
            step = parse_duration(range_[2], "step")
            if end < start or step <= 0:
                raise BadQueryRequest("--range needs START <= END and a positive STEP")
        else:
            instant = parse_cli_time(at or "now", "time", now_ms)
    except QueryError as exc:
        _fail(exc.message, as_json, exc.kind)

    async def run() -> QueryResult:
        backend = backend_for(loaded, path, url=url)
        try:
            if range_ is not None:
                return await backend.range_query(expr, start, end, step)
            return await backend.instant_query(expr, instant)
        finally:
            await backend.close()

    try:
        result = asyncio.run(run())
    except QueryError as exc:
        _fail(exc.message, as_json, exc.kind)
    except MetricsStoreError as exc:
        hint = "" if url else " (a running opsbook serve holds it: pass --url to query the server)"
        _fail(f"{exc}{hint}", as_json, "unavailable")
    if as_json:
        typer.echo(orjson.dumps(encode_result(result)).decode())
        return
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    for info in result.infos:
        typer.echo(f"info: {info}", err=True)
    lines = format_result(result.value)
    typer.echo("\n".join(lines) if lines else "(empty result)")


def import_(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="OpenMetrics text with a timestamp on every sample, ending in # EOF.",
            show_default=False,
        ),
    ],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Backfill samples, with their own timestamps, into the embedded metrics store.

    The file format is the one `promtool tsdb create-blocks-from openmetrics` reads. The whole
    file is checked before anything is written, so a bad line leaves the store untouched.
    Samples older than metrics.retention are removed by the next retention pass of the store.
    """
    from opsbook.metrics.embedded import MetricsStoreError
    from opsbook.metrics.importer import OpenMetricsImportError, import_openmetrics
    from opsbook.metrics.runtime import metrics_store_path, open_embedded_store

    loaded, path = _load(config)
    if loaded.metrics.backend != "embedded":
        _fail(
            "metrics.backend is 'prometheus': import into that server with promtool "
            "(promtool tsdb create-blocks-from openmetrics FILE), not opsbook",
            as_json,
        )
    if not file.is_file():
        _fail(f"{file}: no such file", as_json, "bad_data")
    try:
        store = open_embedded_store(loaded, path, keep_forever=True)
    except MetricsStoreError as exc:
        _fail(str(exc), as_json, "unavailable")
    try:
        report = _import_with_progress(file, store, import_openmetrics, quiet=as_json)
    except OpenMetricsImportError as exc:
        store.close()
        _fail(str(exc), as_json, "bad_data")
    store.close()
    document: dict[str, Any] = {
        "file": str(file),
        "store": str(metrics_store_path(loaded, path)),
        "samples": report.samples,
        "series": report.series,
        "min_time": report.min_ts_ms / 1000 if report.samples else None,
        "max_time": report.max_ts_ms / 1000 if report.samples else None,
        "duration_seconds": round(report.duration_s, 3),
    }
    if as_json:
        typer.echo(orjson.dumps(document).decode())
        return
    rate = report.samples / report.duration_s if report.duration_s > 0 else 0.0
    typer.echo(
        f"imported {report.samples:,} samples of {report.series:,} series from {file} "
        f"in {report.duration_s:.1f} s ({rate:,.0f} samples/s) into {document['store']}"
    )


def _import_with_progress(file: Path, store: Any, importer: Any, *, quiet: bool) -> Any:
    """Run the import with a progress bar on stderr when it is a terminal."""
    if quiet or not sys.stderr.isatty():
        return importer(file, store)
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    columns = (BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("import", total=file.stat().st_size)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return importer(file, store, progress=advance)


def register(app: typer.Typer) -> None:
    app.command("query")(query)
    app.command("import")(import_)
