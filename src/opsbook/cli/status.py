"""``opsbook status``: is it up? Each service's state, since when, uptime, and what is failing.

Reads the database the prober of ``opsbook serve`` keeps current, so it works while the server
runs; ``--url`` asks a server elsewhere instead.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, NoReturn

import orjson
import typer

from opsbook.cli.metrics import ConfigOption, JsonOption, _load

EXIT_DOWN = 2
"""Exit status when a service shown is down, so a deploy script can stop on it."""

ServiceOption = Annotated[
    list[str] | None,
    typer.Option(
        "--service", "-s", help="Only this service (repeat for more).", show_default=False
    ),
]
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="Ask this opsbook server (its /api/v1/status) instead of reading the database.",
        show_default=False,
    ),
]


def status(
    service: ServiceOption = None,
    url: UrlOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show each service's state, since when, uptime over 24 h and 30 d, and failing components.

    Exit status: 0 when no service shown is down, 2 when one is, 1 on errors.
    """
    wanted = service or []
    reports = _from_server(url, wanted) if url else _from_database(config, wanted)
    if as_json:
        typer.echo(orjson.dumps({"services": reports}).decode())
    else:
        typer.echo(format_status(reports, time.time()))
    if any(r["state"] == "down" for r in reports):
        raise typer.Exit(EXIT_DOWN)


def _from_database(config: str | None, wanted: list[str]) -> list[dict[str, Any]]:
    from sqlalchemy.exc import SQLAlchemyError

    from opsbook.probes.status import read_status, report_json
    from opsbook.store import StoreError, create_session_factory, database_status
    from opsbook.store.runtime import open_database

    settings, path = _load(config)
    unknown = sorted(set(wanted) - {s.name for s in settings.services})
    if unknown:
        _fail(f"no service named {', '.join(map(repr, unknown))} in the configuration")
    if not settings.services:
        _fail("no services are configured: add them under 'services:' in opsbook.yaml")
    try:
        engine, _ = open_database(settings, path, upgrade=False)
    except StoreError as exc:
        _fail(str(exc))
    try:
        current = database_status(engine)
        if not current.up_to_date:
            _fail(
                f"{current.url} has no up-to-date opsbook tables yet: start `opsbook serve` "
                "(or run `opsbook db upgrade`) first"
            )
        with create_session_factory(engine)() as session:
            reports = read_status(session, settings, time.time(), wanted)
        return [report_json(r) for r in reports]
    except StoreError as exc:
        _fail(str(exc))
    except SQLAlchemyError as exc:
        _fail(f"cannot read the database: {type(exc).__name__}")
    finally:
        engine.dispose()


def _from_server(url: str, wanted: list[str]) -> list[dict[str, Any]]:
    import httpx

    from opsbook.metrics.scrape.targets import redact_url

    endpoint = url.rstrip("/") + "/api/v1/status"
    shown = redact_url(endpoint)
    try:
        response = httpx.get(endpoint, params={"service": wanted}, timeout=30.0, trust_env=False)
    except httpx.HTTPError as exc:
        _fail(f"cannot reach {shown}: {type(exc).__name__}")
    if response.status_code != 200:
        detail = _detail(response)
        _fail(f"{shown} answered {response.status_code}" + (f": {detail}" if detail else ""))
    try:
        data: list[dict[str, Any]] = response.json()["data"]
    except (ValueError, KeyError, TypeError):
        _fail(f"{shown} did not answer with an opsbook status document")
    return data


def _detail(response: Any) -> str | None:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return None
    return detail if isinstance(detail, str) else None


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


# --- text ------------------------------------------------------------------------------------

_MARKS = {"up": "✓", "degraded": "!", "down": "✗", "unknown": "?"}


def format_status(reports: list[dict[str, Any]], now: float) -> str:
    """A table of services, each followed by what is failing in it."""
    from datetime import datetime

    rows = [("SERVICE", "STATE", "SINCE", "UPTIME 24H", "UPTIME 30D")]
    details: list[list[str]] = []
    for report in reports:
        since = report["since"]
        if since is not None:
            moment = datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp()
            since = f"{since} ({_ago(now - moment)})"
        rows.append(
            (
                report["service"],
                f"{_MARKS.get(report['state'], '?')} {report['state']}",
                since or "-",
                _percent(report["uptime"].get("24h")),
                _percent(report["uptime"].get("30d")),
            )
        )
        details.append(_failing_lines(report))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(rows[0], widths, strict=True)).rstrip()]
    for row, detail in zip(rows[1:], details, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        lines.extend(detail)
    if not reports:
        lines.append("(no services)")
    return "\n".join(lines)


def _failing_lines(report: dict[str, Any]) -> list[str]:
    probes = {p["name"]: p for p in report["probes"]}
    lines = []
    for failing in report["failing"]:
        probe = probes.get(failing["probe"], {})
        where = f"{probe.get('type', '?')} {probe.get('instance', '')}".strip()
        reason = failing["error"] or "components not passing"
        lines.append(f"    {failing['probe']} ({where}): {reason}")
        for c in failing["components"]:
            name = c["component"] + (f":{c['measurement']}" if c["measurement"] else "")
            value = ""
            if c["observed_value"] is not None:
                unit = f" {c['observed_unit']}" if c["observed_unit"] else ""
                value = f" {c['observed_value']:g}{unit}"
            output = f" — {c['output']}" if c["output"] else ""
            lines.append(f"      {c['status']}: {name}{value}{output}")
    return lines


def _percent(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio * 100:.3f}%"


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def register(app: typer.Typer) -> None:
    app.command("status")(status)
