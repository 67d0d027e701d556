"""A real loopback HTTP server playing a metrics endpoint whose behaviour a test switches.

It runs ``http.server`` in a background thread, so it answers independently of the test's
event loop: a "hanging" endpoint really holds its connection open while the scraper waits.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_FORMAT = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@dataclass
class Behaviour:
    """What the next responses look like; tests replace it between scrapes."""

    body: bytes = b""
    status: int = 200
    content_type: str = TEXT_FORMAT
    gzip: bool = False
    declare_length: bool = True
    """Send Content-Length; without it the body ends when the connection closes."""
    hang: bool = False
    """Hold the request until the server is closed (a hung endpoint)."""
    endless: bool = False
    """Stream body bytes until the client hangs up."""
    extra_headers: dict[str, str] = field(default_factory=dict)


class MetricsEndpoint:
    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self.requests: list[dict[str, str]] = []
        self.request_seen = threading.Event()
        self.released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for one poll, and every test closes a server.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def serve(
        self,
        body: str | bytes = b"",
        *,
        status: int = 200,
        content_type: str = TEXT_FORMAT,
        gzip: bool = False,
        declare_length: bool = True,
        hang: bool = False,
        endless: bool = False,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        """Answer every following request this way."""
        self.behaviour = Behaviour(
            body=body.encode() if isinstance(body, str) else body,
            status=status,
            content_type=content_type,
            gzip=gzip,
            declare_length=declare_length,
            hang=hang,
            endless=endless,
            extra_headers=extra_headers or {},
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.requests.append({k.lower(): v for k, v in self.headers.items()})
                endpoint.request_seen.set()
                endpoint.respond(self)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        return Handler

    def respond(self, handler: BaseHTTPRequestHandler) -> None:
        behaviour = self.behaviour
        if behaviour.hang:
            self.released.wait(30)
            return
        body = gzip.compress(behaviour.body) if behaviour.gzip else behaviour.body
        try:
            handler.send_response(behaviour.status)
            handler.send_header("Content-Type", behaviour.content_type)
            if behaviour.gzip:
                handler.send_header("Content-Encoding", "gzip")
            if behaviour.declare_length and not behaviour.endless:
                handler.send_header("Content-Length", str(len(body)))
            for name, value in behaviour.extra_headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            if behaviour.endless:
                line = b"filler_metric 1\n" * 4096
                while not self.released.is_set():
                    handler.wfile.write(line)
            else:
                handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the scraper hung up, as it should on a body over its limit


@contextmanager
def metrics_endpoint(body: str = "") -> Iterator[MetricsEndpoint]:
    """A started endpoint serving ``body`` as Prometheus text; closed on exit."""
    endpoint = MetricsEndpoint()
    endpoint.serve(body)
    endpoint.start()
    try:
        yield endpoint
    finally:
        endpoint.close()
