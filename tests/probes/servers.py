"""Loopback servers the check tests probe: real sockets, each on its own event loop thread.

A server runs in a background thread so it behaves like a remote peer: the probe under test
shares nothing with it but the socket. Behaviour switches at runtime through ``mode``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import ssl
import struct
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from opsbook.instrument.health.model import (
    ComponentResult,
    Observation,
    ServiceIdentity,
    report_document,
)

T = TypeVar("T")


class LoopThread:
    """An asyncio loop in a daemon thread; ``close()`` cancels whatever still runs on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class StreamServer(LoopThread):
    """A TCP (or TLS) server on loopback whose connections ``handle`` serves."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        super().__init__()
        self.host = host
        self._ssl_context = ssl_context
        self._server: asyncio.Server | None = None
        self.port = 0

    def start(self) -> None:
        async def start() -> asyncio.Server:
            return await asyncio.start_server(self._serve, self.host, 0, ssl=self._ssl_context)

        self._server = self.run(start())
        self.port = self._server.sockets[0].getsockname()[1]

    def close(self) -> None:
        server = self._server
        if server is not None:
            self.loop.call_soon_threadsafe(server.close)
        super().close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self.handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the probe hung up (timeouts, aborts): nothing to serve
        except asyncio.CancelledError:
            # Shutting down. Ending cancelled would make 3.11's start_server log an error.
            pass
        finally:
            writer.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


# HTTP


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def _identity() -> ServiceIdentity:
    started = datetime(2026, 1, 1, tzinfo=UTC)
    return ServiceIdentity("shop", "1.2.3", "r42", "test", started)


def health_document(status: str) -> bytes:
    """What opsbook's own health endpoint serves, built by its own model."""
    now = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    database = Observation(
        "responseTime",
        "fail" if status == "fail" else "pass",
        observed_value=3.5 if status != "fail" else 5000,
        observed_unit="ms",
        output="connection pool exhausted" if status == "fail" else None,
    )
    disk = Observation(
        "utilization",
        "warn" if status == "warn" else "pass",
        observed_value=91.5 if status == "warn" else 40,
        observed_unit="percent",
    )
    results = [
        ComponentResult("database", "datastore", True, (database,), now),
        ComponentResult("disk", "system", True, (disk,), now),
    ]
    document = report_document(_identity(), results, now=now + timedelta(seconds=1))
    return json.dumps(document).encode()


LENIENT_HEALTH = json.dumps(
    {
        "status": "UP",
        "checks": {
            "cache:hitRatio": {"status": "ok", "observedValue": 0.93},  # one entry, not a list
            "queue": [
                {"componentId": "rabbit-1", "status": "down", "observedValue": True},
                {"status": "unknown"},
                "not an entry",
            ],
            "search:latency": [{"status": "error", "observedValue": "12 ms", "output": 7}],
        },
    }
).encode()

HUGE_BODY = b"x" * 5000
HEALTH_JSON = "application/health+json"


class HttpServer(StreamServer):
    """An HTTP/1.1 server whose answer depends on ``mode`` (see :meth:`_respond`)."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        super().__init__(ssl_context, host)
        self.mode = "healthy"
        self.requests: list[Request] = []
        self.credentials = ("probe", "p@ss w0rd")
        self.slow_s = 10.0

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl_context is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await reader.readexactly(1)
        if first == b"\x16":  # a TLS ClientHello on the plain port: answer as nginx does
            writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return
        request = await _read_request(first, reader)
        self.requests.append(request)
        await self._respond(request, writer)

    async def _respond(self, request: Request, writer: asyncio.StreamWriter) -> None:
        mode = self.mode
        if mode in ("healthy", "warn", "failing"):
            status = {"healthy": "pass", "warn": "warn", "failing": "fail"}[mode]
            code = 503 if status == "fail" else 200
            await _send(writer, code, health_document(status), HEALTH_JSON, request)
        elif mode == "lenient":
            await _send(writer, 200, LENIENT_HEALTH, "application/json; charset=utf-8", request)
        elif mode == "slow":
            await asyncio.sleep(self.slow_s)
        elif mode == "garbage":
            writer.write(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
            await writer.drain()
        elif mode == "not-json":
            await _send(writer, 200, b"<html>fine</html>", "text/html", request)
        elif mode == "bad-health-json":
            await _send(writer, 200, b'{"status": "pass",', HEALTH_JSON, request)
        elif mode == "health-json-array":
            await _send(writer, 200, b'["pass"]', HEALTH_JSON, request)
        elif mode == "chunked":
            await _send_chunked(writer, health_document("pass"))
        elif mode == "close-delimited":
            await _send_until_close(writer, health_document("warn"))
        elif mode == "huge":
            await _send(writer, 200, HUGE_BODY, "text/plain", request)
        elif mode == "huge-close-delimited":
            await _send_until_close(writer, HUGE_BODY, content_type="text/plain")
        elif mode == "redirects":
            await self._redirect(request, writer)
        elif mode == "redirect-loop":
            await _send(writer, 302, b"", "text/plain", request, location="/loop")
        elif mode == "auth":
            await self._authenticate(request, writer)
        elif mode == "no-content":
            await _send(writer, 204, b"", None, request)
        elif mode == "early-close":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
            await writer.drain()
        else:  # pragma: no cover - a typo in a test
            raise ValueError(f"unknown mode {mode!r}")

    async def _redirect(self, request: Request, writer: asyncio.StreamWriter) -> None:
        """``/r/N`` -> ``r/N-1`` (relative), ``/r/0`` healthy; ``/see-other`` -> 303 -> ``/r/0``."""
        if request.path == "/see-other":
            await _send(writer, 303, b"", "text/plain", request, location="/r/0")
        elif request.path.startswith("/r/") and request.path != "/r/0":
            hops = int(request.path[3:])
            # Alternate relative and absolute Location headers.
            location = f"{hops - 1}" if hops % 2 else f"{self.url}/r/{hops - 1}"
            await _send(writer, 307 if hops == 3 else 301, b"", "text/plain", request, location)
        else:
            await _send(writer, 200, health_document("pass"), HEALTH_JSON, request)

    async def _authenticate(self, request: Request, writer: asyncio.StreamWriter) -> None:
        user, password = self.credentials
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if request.headers.get("authorization") == expected:
            await _send(writer, 200, b"welcome", "text/plain", request)
        else:
            await _send(writer, 401, b"who are you?", "text/plain", request)


async def _read_request(first: bytes, reader: asyncio.StreamReader) -> Request:
    head = first + await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return Request(method, path, headers, body)


def _head(code: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {code} Whatever"] + [f"{n}: {v}" for n, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _send(
    writer: asyncio.StreamWriter,
    code: int,
    body: bytes,
    content_type: str | None,
    request: Request,
    location: str | None = None,
) -> None:
    headers = [("Content-Length", str(len(body))), ("Connection", "close")]
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    if location is not None:
        headers.append(("Location", location))
    writer.write(_head(code, headers))
    if request.method != "HEAD":  # HEAD: the length of a body that is not sent
        writer.write(body)
    await writer.drain()


async def _send_chunked(writer: asyncio.StreamWriter, body: bytes) -> None:
    writer.write(_head(200, [("Content-Type", HEALTH_JSON), ("Transfer-Encoding", "chunked")]))
    # Uneven chunks, an extension and a trailer, in separate writes, so the client meets
    # chunk boundaries split across reads.
    pieces = [body[:7], body[7:300], body[300:]]
    for index, piece in enumerate(pieces):
        extension = ";note=yes" if index == 1 else ""
        writer.write(f"{len(piece):x}{extension}\r\n".encode())
        await writer.drain()
        await asyncio.sleep(0.005)
        writer.write(piece + b"\r\n")
        await writer.drain()
    writer.write(b"0\r\nX-Trailer: done\r\n\r\n")
    await writer.drain()


async def _send_until_close(
    writer: asyncio.StreamWriter, body: bytes, content_type: str = HEALTH_JSON
) -> None:
    writer.write(_head(200, [("Content-Type", content_type), ("Connection", "close")]))
    for start in range(0, len(body), 1000):
        writer.write(body[start : start + 1000])
        await writer.drain()
        await asyncio.sleep(0.002)


# TLS and silent servers


class SilentServer:
    """Listens but never accepts or speaks: the kernel completes the TCP handshake (backlog),
    then nothing; a TLS or HTTP client waits for an answer that never comes."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self.port = int(self._socket.getsockname()[1])

    def close(self) -> None:
        self._socket.close()


def server_tls_context(cert_path: str, key_path: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


# Redis (RESP2)


class RespServer(StreamServer):
    """A fake Redis: ``mode`` "auth" requires ``password``; "garbage" answers with non-RESP."""

    def __init__(self, password: str) -> None:
        super().__init__()
        self.password = password
        self.mode = "auth"
        self.commands: list[list[str]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        authenticated = False
        while True:
            try:
                command = await _read_resp_command(reader)
            except asyncio.IncompleteReadError:
                return
            self.commands.append(command)
            if self.mode == "garbage":
                writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                await writer.drain()
                return
            name = command[0].upper()
            if name == "AUTH":
                authenticated = command[-1] == self.password
                writer.write(
                    b"+OK\r\n"
                    if authenticated
                    else b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
                )
            elif not authenticated:
                writer.write(b"-NOAUTH Authentication required.\r\n")
            elif name == "PING":
                writer.write(b"+PONG\r\n")
            elif name == "SELECT":
                writer.write(b"+OK\r\n")
            else:
                writer.write(b"-ERR unknown command\r\n")
            await writer.drain()


async def _read_resp_command(reader: asyncio.StreamReader) -> list[str]:
    header = await reader.readuntil(b"\r\n")
    assert header.startswith(b"*"), header
    arguments = []
    for _ in range(int(header[1:-2])):
        length_line = await reader.readuntil(b"\r\n")
        data = await reader.readexactly(int(length_line[1:-2]) + 2)
        arguments.append(data[:-2].decode())
    return arguments


# DNS (UDP)

DNS_RECORDS: dict[str, dict[int, list[str]]] = {
    "svc.test": {1: ["10.0.0.1", "10.0.0.2"], 28: ["fd00::1"]},
    "plain.test": {1: ["10.0.0.9"]},
}


class DnsServer(LoopThread):
    """Answers A/AAAA from :data:`DNS_RECORDS` with compression pointers (``plain.test``
    without), a CNAME chain for ``alias.test``, SERVFAIL for ``broken.test``, a stray answer
    before the real one for ``spoofed.test``, nothing for ``silent.test``; NXDOMAIN else."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[tuple[int, str, int]] = []
        self._transport: asyncio.DatagramTransport | None = None

        async def start() -> asyncio.DatagramTransport:
            transport, _ = await self.loop.create_datagram_endpoint(
                lambda: _DnsProtocol(self), local_addr=("127.0.0.1", 0)
            )
            return transport

        self._transport = self.run(start())
        self.port = int(self._transport.get_extra_info("sockname")[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        transport = self._transport
        if transport is not None:
            self.loop.call_soon_threadsafe(transport.close)
        super().close()

    def answers(self, query: bytes) -> list[bytes]:
        query_id, _, _, _, _, _ = struct.unpack_from("!HHHHHH", query)
        name, end = _read_question_name(query, 12)
        qtype = struct.unpack_from("!H", query, end)[0]
        self.queries.append((query_id, name, qtype))
        question = query[12 : end + 4]
        if name == "silent.test":
            return []
        if name == "broken.test":
            return [_dns_message(query_id, 2, question, [])]
        if name == "spoofed.test":
            stray = _dns_message(
                (query_id + 1) % 65536, 0, question, [_a_record(b"\xc0\x0c", "6.6.6.6")]
            )
            real = _dns_message(query_id, 0, question, [_a_record(b"\xc0\x0c", "10.0.0.7")])
            return [b"\x00\x01", stray, real]  # a runt, someone else's answer, then ours
        if name == "alias.test":
            # alias.test CNAME svc.test; svc.test A 10.0.0.1, the A's name pointing into the CNAME.
            target = _encode_name("svc.test")
            cname = b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 60, len(target)) + target
            cname_rdata_at = 12 + len(question) + len(cname) - len(target)
            pointer = struct.pack("!H", 0xC000 | cname_rdata_at)
            return [_dns_message(query_id, 0, question, [cname, _a_record(pointer, "10.0.0.1")])]
        addresses = DNS_RECORDS.get(name, {}).get(qtype)
        if name not in DNS_RECORDS:
            return [_dns_message(query_id, 3, question, [])]
        owner = _encode_name(name) if name == "plain.test" else b"\xc0\x0c"
        records = [_address_record(owner, qtype, a) for a in addresses or []]
        return [_dns_message(query_id, 0, question, records)]


class _DnsProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        assert self._transport is not None
        for answer in self._server.answers(data):
            self._transport.sendto(answer, addr)


def _read_question_name(message: bytes, position: int) -> tuple[str, int]:
    labels = []
    while message[position]:
        length = message[position]
        labels.append(message[position + 1 : position + 1 + length].decode())
        position += 1 + length
    return ".".join(labels), position + 1


def _encode_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"


def _dns_message(query_id: int, rcode: int, question: bytes, answers: list[bytes]) -> bytes:
    flags = 0x8000 | 0x0100 | 0x0080 | rcode  # QR, RD, RA
    header = struct.pack("!HHHHHH", query_id, flags, 1, len(answers), 0, 0)
    return header + question + b"".join(answers)


def _address_record(owner: bytes, qtype: int, address: str) -> bytes:
    family = socket.AF_INET if qtype == 1 else socket.AF_INET6
    data = socket.inet_pton(family, address)
    return owner + struct.pack("!HHIH", qtype, 1, 300, len(data)) + data


def _a_record(owner: bytes, address: str) -> bytes:
    return _address_record(owner, 1, address)
