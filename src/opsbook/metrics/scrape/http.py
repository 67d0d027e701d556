"""One HTTP GET of a metrics endpoint, as Prometheus makes it, under a timeout and a size limit."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

import httpx

from opsbook import __version__
from opsbook.config.durations import format_duration
from opsbook.metrics.scrape.body import BoundedBody, body_too_large
from opsbook.metrics.scrape.errors import ScrapeError
from opsbook.metrics.scrape.targets import Target, redact_text

ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
USER_AGENT = f"opsbook/{__version__}"


@dataclass(frozen=True, slots=True)
class Fetched:
    body: bytes
    content_type: str | None


def scrape_headers(timeout: timedelta) -> dict[str, str]:
    return {
        "Accept": ACCEPT,
        "Accept-Encoding": "gzip",
        "User-Agent": USER_AGENT,
        # Lets an exporter that does slow work (blackbox, SNMP) stop in time.
        "X-Prometheus-Scrape-Timeout-Seconds": _seconds_text(timeout),
    }


async def fetch(client: httpx.AsyncClient, target: Target, body_limit: int) -> Fetched:
    """GET the target's metrics; raise :class:`ScrapeError` with the reason if that fails.

    The whole exchange (connect, headers, body) must finish within ``target.timeout``; a
    server that trickles its body does not get one timeout per chunk.
    """
    timeout_s = target.timeout.total_seconds()
    try:
        async with asyncio.timeout(timeout_s):
            return await _get(client, target, body_limit)
    except (TimeoutError, httpx.TimeoutException):
        raise ScrapeError(_timeout_message(target)) from None
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        raise ScrapeError(
            redact_text(f"request to {target.safe_url} failed: {reason}", target.url)
        ) from None


async def _get(client: httpx.AsyncClient, target: Target, body_limit: int) -> Fetched:
    async with client.stream(
        "GET",
        target.url,
        headers=scrape_headers(target.timeout),
        timeout=target.timeout.total_seconds(),
        follow_redirects=True,
    ) as response:
        if not response.is_success:
            raise ScrapeError(
                f"server returned HTTP status {response.status_code} {response.reason_phrase}"
            )
        encoding = response.headers.get("content-encoding")
        declared = response.headers.get("content-length", "")
        if not encoding and declared.isdigit() and int(declared) > body_limit:
            raise body_too_large(body_limit)  # no need to read what cannot be kept
        body = BoundedBody(encoding, body_limit)
        async for chunk in response.aiter_raw():
            body.feed(chunk)
        return Fetched(body.finish(), response.headers.get("content-type"))


def _timeout_message(target: Target) -> str:
    return (
        f"scrape timeout: no complete response from {target.safe_url} within "
        f"{_duration_text(target.timeout)}; make the endpoint faster or raise the "
        "scrape timeout"
    )


def _duration_text(value: timedelta) -> str:
    try:
        return format_duration(value)
    except ValueError:  # sub-millisecond, only from code
        return f"{value.total_seconds()}s"


def _seconds_text(value: timedelta) -> str:
    # As Prometheus writes it: "10", "0.5", never "10.0".
    text = repr(value.total_seconds())
    return text.removesuffix(".0")
