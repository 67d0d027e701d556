"""`GET /metrics`: Prometheus text format, or OpenMetrics when the scraper asks for it."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry

from opsbook.instrument.metrics import render_metrics


class MetricsEndpoint:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.registry = registry

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await send(
                {
                    "type": "http.response.start",
                    "status": 405,
                    "headers": [(b"allow", b"GET, HEAD"), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        accept = ""
        for name, value in scope["headers"]:
            if name == b"accept":
                accept = value.decode("latin-1")
                break
        # Rendering walks every series (and, with several workers, reads their files): keep it
        # off the event loop.
        body, content_type = await asyncio.to_thread(render_metrics, self.registry, accept)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", content_type.encode("latin-1")),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
