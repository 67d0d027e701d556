"""The HTTP check: one request, then the conditions; health+json bodies become components.

Without conditions an attempt succeeds on a 2xx status (after redirects), like blackbox's
``http_2xx``. A body served as ``application/health+json`` (or ``application/json`` holding a
``checks`` object) is read into :attr:`CheckResult.health_status` and
:attr:`CheckResult.components`, so the prober can chart each dependency the service reports.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from opsbook.probes.checks._common import check_conditions, failure
from opsbook.probes.checks.http_client import HttpError, HttpResponse, fetch
from opsbook.probes.conditions import Observation
from opsbook.probes.results import CheckResult, ComponentCheck, HealthStatus
from opsbook.probes.specs import HttpCheck

_perf_counter = time.perf_counter

HEALTH_JSON = "application/health+json"
# The IETF draft's statuses and the aliases it allows ("ok"/"up", "error"/"down").
_STATUS_ALIASES: dict[str, HealthStatus] = {
    "pass": "pass",
    "ok": "pass",
    "up": "pass",
    "warn": "warn",
    "fail": "fail",
    "error": "fail",
    "down": "fail",
}

Health = tuple[HealthStatus | None, tuple[ComponentCheck, ...]]


class HealthBodyError(ValueError):
    """A body served as health+json that is not a health+json document."""


async def check_http(check: HttpCheck) -> CheckResult:
    started = _perf_counter()
    try:
        response = await fetch(
            check.url,
            method=check.method,
            headers=check.headers,
            body=check.body,
            follow_redirects=check.follow_redirects,
            verify_tls=check.verify_tls,
            max_body_bytes=check.max_body_bytes,
        )
    except HttpError as exc:
        return failure(started, str(exc))
    duration = _perf_counter() - started
    return judge(check, response, duration)


def judge(check: HttpCheck, response: HttpResponse, duration_s: float) -> CheckResult:
    """The result of a completed exchange: health+json, then conditions (or 2xx). Pure."""
    status = response.status
    try:
        # HEAD, 204 and 304 answers describe a body they do not carry.
        bodiless = check.method == "HEAD" or status in (204, 304)
        health_status, components = (None, ()) if bodiless else read_health(response)
    except HealthBodyError as exc:
        return CheckResult(
            success=False,
            duration_s=duration_s,
            error=str(exc),
            status_code=status,
            cert_expiry_unix_s=response.cert_not_after,
        )
    if check.conditions:
        observation = Observation(
            status=status,
            response_time_ms=duration_s * 1000.0,
            body=response.body.decode("utf-8", "replace"),
            cert_expiry_s=(
                response.cert_not_after - time.time()
                if response.cert_not_after is not None
                else None
            ),
            connected=True,
        )
        error = check_conditions(check.conditions, observation)
    else:
        error = None if 200 <= status < 300 else f"HTTP status {status} (expected 2xx)"
    return CheckResult(
        success=error is None,
        duration_s=duration_s,
        error=error,
        status_code=status,
        cert_expiry_unix_s=response.cert_not_after,
        health_status=health_status,
        components=components,
    )


def read_health(response: HttpResponse) -> Health:
    """The health+json status and components of ``response``; ``(None, ())`` for other bodies.

    Raises :class:`HealthBodyError` when the body claims to be health+json but is not.
    """
    content_type = response.headers.get("content-type")
    if content_type is None:
        return None, ()
    media_type = content_type.partition(";")[0].strip().lower()
    body = response.body
    if media_type == HEALTH_JSON:
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise HealthBodyError(f"the body is not valid {HEALTH_JSON}: {exc}") from None
        if not isinstance(document, dict):
            raise HealthBodyError(f"the body is not valid {HEALTH_JSON}: not a JSON object")
        return health_of(document)
    # Plain JSON counts when it looks like health+json; the byte test spares parsing other bodies.
    if media_type == "application/json" and b'"checks"' in body:
        try:
            document = json.loads(body)
        except ValueError:
            return None, ()
        if isinstance(document, dict) and isinstance(document.get("checks"), dict):
            return health_of(document)
    return None, ()


def health_of(document: dict[str, Any]) -> Health:
    """Top-level status and components of a parsed health+json document."""
    checks = document.get("checks")
    components: list[ComponentCheck] = []
    if isinstance(checks, dict):
        for key, entries in checks.items():
            for entry in entries if isinstance(entries, list) else [entries]:
                component = _component(str(key), entry)
                if component is not None:
                    components.append(component)
    return normalize_status(document.get("status")), tuple(components)


def _component(key: str, entry: Any) -> ComponentCheck | None:
    if not isinstance(entry, dict):
        return None
    status = normalize_status(entry.get("status"))
    if status is None:
        return None  # an entry that does not say how it is cannot be charted
    name, _, measurement = key.partition(":")
    component_id = entry.get("componentId")
    return ComponentCheck(
        component=component_id if isinstance(component_id, str) and component_id else name,
        measurement=measurement,
        status=status,
        observed_value=_number(entry.get("observedValue")),
        observed_unit=_text(entry.get("observedUnit")),
        output=_text(entry.get("output")),
    )


def normalize_status(value: Any) -> HealthStatus | None:
    if not isinstance(value, str):
        return None
    return _STATUS_ALIASES.get(value.strip().lower())


def _number(value: Any) -> float | None:
    # bool is an int in Python, but `true` is not a measurement.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # a JSON integer beyond float range
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
