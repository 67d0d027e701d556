"""A minimal HTTP/1.1 client for probes: one request per fresh connection, ``Connection: close``.

Each probe measures the real path (DNS, connect, TLS, request, body), as blackbox-exporter does,
so nothing is pooled. The client is an :class:`asyncio.Protocol` rather than httpx because the
prober runs thousands of probes a second per core: on fresh connections httpx does ~960 req/s
where a bare Protocol does ~7,000. So the hot path avoids per-request churn: parsed URLs and
request heads are cached, a whole small response is parsed from one buffer, and JSON is never
touched here.

Failures raise :class:`HttpError` whose message is written for users and holds no credentials.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import ssl
from dataclasses import dataclass
from typing import cast
from urllib.parse import quote, unquote, urljoin, urlsplit

import opsbook
from opsbook.metrics.scrape.targets import redact_url
from opsbook.probes.checks._common import describe_error
from opsbook.probes.checks.tls import client_context, peer_not_after

MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_HEAD_BYTES = 64 * 1024
"""Status line plus headers; more is not a health endpoint."""
_MAX_CHUNK_LINE = 1024
_GARBAGE_PREVIEW = 32
_USER_AGENT = f"opsbook-probe/{opsbook.__version__}"
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Request headers the client owns: the caller's would contradict how the body is framed.
_OWNED_HEADERS = frozenset({"connection", "content-length", "transfer-encoding"})
_HEX_DIGITS = b"0123456789abcdefABCDEF"


class HttpError(Exception):
    """The request failed; ``str()`` is the reason for users (never holds credentials)."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    """Lower-cased names; repeated headers joined with ``", "``."""
    body: bytes
    url: str
    """The URL that answered (after redirects); may hold credentials: do not show it."""
    cert_not_after: float | None
    """``notAfter`` of the server's certificate (Unix seconds) when the answer came over TLS."""


@dataclass(frozen=True, slots=True)
class _Prepared:
    """Where to connect and what to send for one URL, method and header set."""

    host: str
    port: int
    tls: bool
    origin: tuple[str, str, int]
    head: bytes


async def fetch(
    url: str,
    *,
    method: str = "GET",
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes | None = None,
    follow_redirects: bool = True,
    verify_tls: bool = True,
    max_body_bytes: int = 1024 * 1024,
) -> HttpResponse:
    """Send one request (and follow up to 10 redirects); raise :class:`HttpError` on failure."""
    for hop in range(MAX_REDIRECTS + 1):
        prepared = _prepare(url, method, headers, len(body) if body is not None else -1)
        response = await _exchange(
            prepared, url, body, method == "HEAD", verify_tls, max_body_bytes
        )
        location = response.headers.get("location")
        if not follow_redirects or response.status not in REDIRECT_STATUSES or not location:
            return response
        if hop == MAX_REDIRECTS:
            raise HttpError(f"too many redirects (more than {MAX_REDIRECTS})")
        next_url = urljoin(url, location)
        if response.status == 303 and method != "HEAD":
            method, body = "GET", None  # 303 See Other: fetch the result with GET
        if _origin_of(next_url) != prepared.origin:
            # Do not hand an explicit Authorization header to another host.
            headers = tuple((n, v) for n, v in headers if n.lower() != "authorization")
        url = next_url
    raise AssertionError("unreachable")  # pragma: no cover


def _origin_of(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        return (parts.scheme, parts.hostname or "", parts.port or 0)
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)
def _prepare(
    url: str, method: str, headers: tuple[tuple[str, str], ...], content_length: int
) -> _Prepared:
    """Parse ``url`` and render the request head; cached since probes repeat the same request."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise HttpError(f"invalid URL {redact_url(url)!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise HttpError(f"unsupported URL {redact_url(url)!r}: only http:// and https://")
    host = parts.hostname
    if not host:
        raise HttpError(f"the URL {redact_url(url)!r} has no host")
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    host_header = parts.netloc.rpartition("@")[2]
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    if not target.isascii() or " " in target:
        target = quote(target, safe="/%:@!$&'()*+,;=-._~?")
    lines = [
        f"{method} {target} HTTP/1.1",
        *_header_lines(host_header, parts.username, parts.password, headers, content_length),
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    return _Prepared(host, port, scheme == "https", (scheme, host, port), head)


def _header_lines(
    host_header: str,
    username: str | None,
    password: str | None,
    headers: tuple[tuple[str, str], ...],
    content_length: int,
) -> list[str]:
    """Default headers, overridden by the check's (case-insensitively), then framing."""
    chosen: dict[str, tuple[str, str]] = {
        "host": ("Host", host_header),
        "user-agent": ("User-Agent", _USER_AGENT),
        "accept": ("Accept", "*/*"),
    }
    if username is not None or password is not None:
        chosen["authorization"] = ("Authorization", _basic_auth(username, password))
    for name, value in headers:
        if _has_line_break(name) or _has_line_break(value) or ":" in name or not name:
            raise HttpError(f"invalid request header {name!r}")
        lower = name.lower()
        if lower not in _OWNED_HEADERS:
            chosen[lower] = (name, value)
    lines = [f"{name}: {value}" for name, value in chosen.values()]
    if content_length >= 0:
        lines.append(f"Content-Length: {content_length}")
    lines.append("Connection: close")
    return lines


def _has_line_break(text: str) -> bool:
    return "\r" in text or "\n" in text


def _basic_auth(username: str | None, password: str | None) -> str:
    credentials = f"{unquote(username or '')}:{unquote(password or '')}"
    return "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")


async def _exchange(
    prepared: _Prepared,
    url: str,
    body: bytes | None,
    head_only: bool,
    verify_tls: bool,
    max_body_bytes: int,
) -> HttpResponse:
    """One request on one fresh connection."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[HttpResponse] = loop.create_future()
    request = prepared.head + body if body else prepared.head
    reader = _ResponseReader(request, url, head_only, max_body_bytes, done)
    try:
        transport, _ = await loop.create_connection(
            lambda: reader,
            prepared.host,
            prepared.port,
            ssl=client_context(verify_tls, "http/1.1") if prepared.tls else None,
            server_hostname=prepared.host if prepared.tls else None,
        )
    except OSError as exc:
        raise HttpError(describe_error(exc, prepared.host)) from None
    try:
        return await done
    finally:
        if not transport.is_closing():
            transport.abort()  # cancelled (timeout) or failed: drop the connection now


# Body framing of a response, decided by its head.
_NO_BODY = 0
_LENGTH = 1
_CHUNKED = 2
_UNTIL_CLOSE = 3

# Chunked decoding states; a positive number is the bytes left in the current chunk.
_CHUNK_SIZE_LINE = -1
_CHUNK_CRLF = -2
_CHUNK_TRAILERS = -3


class _ResponseReader(asyncio.Protocol):
    """Writes the request, reads one response into ``done``. Parses straight from one buffer."""

    def __init__(
        self,
        request: bytes,
        url: str,
        head_only: bool,
        max_body_bytes: int,
        done: asyncio.Future[HttpResponse],
    ) -> None:
        self._request = request
        self._url = url
        self._head_only = head_only
        self._max_body = max_body_bytes
        self._done = done
        self._transport: asyncio.Transport | None = None
        self._ssl_object: ssl.SSLObject | None = None
        self._buffer = bytearray()
        self._status = 0  # 0 until the head is parsed
        self._headers: dict[str, str] = {}
        self._framing = _NO_BODY
        self._remaining = 0  # _LENGTH: bytes left; _CHUNKED: the chunk state
        self._body = bytearray()
        self._finished = False

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)  # create_connection: a stream
        self._transport = stream
        self._ssl_object = stream.get_extra_info("ssl_object")
        stream.write(self._request)

    def data_received(self, data: bytes) -> None:
        if self._finished:
            return
        if self._status == 0:
            self._buffer += data
            self._parse_head()
        elif self._framing == _LENGTH:
            self._feed_length(data)
        elif self._framing == _CHUNKED:
            self._buffer += data
            self._feed_chunked()
        else:
            self._feed_until_close(data)

    def eof_received(self) -> bool | None:
        return False  # let the transport close; connection_lost decides what we got

    def connection_lost(self, exc: Exception | None) -> None:
        if self._finished:
            return
        if exc is not None:
            self._fail(describe_error(exc))
        elif self._status == 0:
            self._fail(self._incomplete_head_reason())
        elif self._framing == _UNTIL_CLOSE:
            self._finish()
        elif self._framing == _LENGTH:
            got = len(self._body)
            self._fail(
                "the server closed the connection before the end of the body "
                f"(got {got} of {got + self._remaining} bytes)"
            )
        else:
            self._fail("the server closed the connection before the end of the chunked body")

    # the head

    def _parse_head(self) -> None:
        buffer = self._buffer
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if not _may_be_http(buffer):
                    self._fail(_not_http(buffer))
                elif len(buffer) > MAX_HEAD_BYTES:
                    self._fail(f"the response head is larger than {MAX_HEAD_BYTES} bytes")
                return
            if not buffer.startswith(b"HTTP/"):
                self._fail(_not_http(buffer))
                return
            status = self._read_head(bytes(buffer[:end]))
            del buffer[: end + 4]
            if status is None:
                return
            if 100 <= status < 200 and status != 101:
                continue  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            self._status = status
            self._start_body(bytes(buffer))
            return

    def _read_head(self, head: bytes) -> int | None:
        """Parse the status line and headers into ``self._headers``; None after a failure."""
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if (
            len(parts) < 2
            or not parts[0].startswith(b"HTTP/1.")
            or len(parts[1]) != 3
            or not parts[1].isdigit()
        ):
            self._fail(f"the server sent a malformed status line: {_preview(lines[0])}")
            return None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon:
                self._fail(f"the server sent a malformed header line: {_preview(line)}")
                return None
            key = name.strip().decode("latin-1").lower()
            text = value.strip().decode("latin-1")
            previous = headers.get(key)
            headers[key] = text if previous is None else f"{previous}, {text}"
        self._headers = headers
        return int(parts[1])

    def _start_body(self, rest: bytes) -> None:
        status = self._status
        headers = self._headers
        if self._head_only or status < 200 or status in (204, 304):
            self._finish()
            return
        transfer_encoding = headers.get("transfer-encoding")
        if transfer_encoding is not None and transfer_encoding.lower().endswith("chunked"):
            self._framing = _CHUNKED
            self._remaining = _CHUNK_SIZE_LINE
            self._buffer = bytearray(rest)
            self._feed_chunked()
            return
        length_text = headers.get("content-length")
        if length_text is None:
            self._framing = _UNTIL_CLOSE
            self._feed_until_close(rest)
            return
        if not length_text.isdigit():
            self._fail(f"the server sent an invalid Content-Length: {length_text[:40]!r}")
            return
        length = int(length_text)
        if length > self._max_body:
            self._fail(_too_large(self._max_body))
            return
        self._framing = _LENGTH
        self._remaining = length
        self._feed_length(rest)

    # the body

    def _feed_length(self, data: bytes) -> None:
        if not data:
            if self._remaining == 0:
                self._finish()
            return
        take = data[: self._remaining] if len(data) > self._remaining else data
        self._body += take
        self._remaining -= len(take)
        if self._remaining == 0:
            self._finish()

    def _feed_until_close(self, data: bytes) -> None:
        self._body += data
        if len(self._body) > self._max_body:
            self._fail(_too_large(self._max_body))

    def _feed_chunked(self) -> None:
        raw = self._buffer
        position = 0
        while True:
            state = self._remaining
            if state > 0:
                take = min(state, len(raw) - position)
                if take == 0:
                    break
                self._body += raw[position : position + take]
                position += take
                self._remaining = state - take
                if len(self._body) > self._max_body:
                    self._fail(_too_large(self._max_body))
                    return
                if self._remaining == 0:
                    self._remaining = _CHUNK_CRLF
            elif state == _CHUNK_CRLF:
                if len(raw) - position < 2:
                    break
                if raw[position : position + 2] != b"\r\n":
                    self._fail("the server sent a malformed chunked body (no CRLF after a chunk)")
                    return
                position += 2
                self._remaining = _CHUNK_SIZE_LINE
            else:
                end = raw.find(b"\r\n", position)
                if end < 0:
                    if len(raw) - position > _MAX_CHUNK_LINE:
                        self._fail("the server sent a malformed chunked body (line too long)")
                        return
                    break
                line = bytes(raw[position:end])
                position = end + 2
                if state == _CHUNK_TRAILERS:
                    if not line:
                        self._finish()
                        return
                    continue  # trailer fields: not needed by a probe
                size = _chunk_size(line)
                if size is None:
                    self._fail(f"the server sent a malformed chunk size: {_preview(line)}")
                    return
                self._remaining = size if size else _CHUNK_TRAILERS
        del raw[:position]

    # outcomes

    def _incomplete_head_reason(self) -> str:
        buffer = self._buffer
        if not buffer:
            return "the server closed the connection without answering"
        if not buffer.startswith(b"HTTP/"):
            return _not_http(buffer)
        return "the server closed the connection in the middle of the response head"

    def _finish(self) -> None:
        self._finished = True
        cert_not_after = peer_not_after(self._ssl_object) if self._ssl_object else None
        if not self._done.done():
            self._done.set_result(
                HttpResponse(
                    self._status, self._headers, bytes(self._body), self._url, cert_not_after
                )
            )
        if self._transport is not None:
            # Everything is read. abort() rather than close(): on TLS, close() would wait
            # (up to 30s) for the server's close_notify, holding the socket for nothing.
            self._transport.abort()

    def _fail(self, reason: str) -> None:
        self._finished = True
        if not self._done.done():
            self._done.set_exception(HttpError(reason))
        if self._transport is not None:
            self._transport.abort()


def _may_be_http(buffer: bytearray) -> bool:
    """Whether the first bytes can still become ``HTTP/``: rejects garbage before a timeout."""
    start = bytes(buffer[:5])
    return b"HTTP/".startswith(start)


def _not_http(buffer: bytearray) -> str:
    return f"the server did not answer with HTTP: {_preview(bytes(buffer))}"


def _preview(data: bytes) -> str:
    shown = repr(bytes(data[:_GARBAGE_PREVIEW]))
    return shown + "..." if len(data) > _GARBAGE_PREVIEW else shown


def _too_large(limit: int) -> str:
    return f"the body is larger than {limit} bytes"


def _chunk_size(line: bytes) -> int | None:
    digits = line.split(b";", 1)[0].strip()
    # int(x, 16) would also take "0x1f", "+1f" and "1_f"; HTTP allows hex digits only.
    if not digits or digits.strip(_HEX_DIGITS) or len(digits) > 16:
        return None
    return int(digits, 16)
