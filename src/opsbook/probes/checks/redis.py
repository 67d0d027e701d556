"""The Redis check: ``AUTH`` (when the URL has a password), ``SELECT`` (with ``/N``), ``PING``.

Speaks RESP2 directly over asyncio streams: a probe needs three commands and simple replies,
not a client library. The commands go out in one write (pipelined); the replies are read in
order and the first error reply is the reason ("redis answered: NOAUTH Authentication required.").
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from opsbook.probes.checks._common import describe_error, failure
from opsbook.probes.checks.tls import client_context
from opsbook.probes.results import CheckResult
from opsbook.probes.specs import RedisCheck

_perf_counter = time.perf_counter

DEFAULT_PORT = 6379
_PREVIEW = 32


class RedisError(Exception):
    """The check failed; ``str()`` is the reason for users."""


@dataclass(frozen=True, slots=True)
class RedisTarget:
    host: str
    port: int
    tls: bool
    commands: tuple[tuple[str, ...], ...]
    """AUTH and SELECT as the URL asks, then PING."""


async def check_redis(check: RedisCheck) -> CheckResult:
    started = _perf_counter()
    try:
        target = parse_url(check.url)
        await _ping(target)
    except RedisError as exc:
        return failure(started, str(exc))
    return CheckResult(success=True, duration_s=_perf_counter() - started)


def parse_url(url: str) -> RedisTarget:
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise RedisError(f"invalid URL: {exc}") from None
    if parts.scheme not in ("redis", "rediss"):
        raise RedisError("the URL must start with redis:// or rediss://")
    if not parts.hostname:
        raise RedisError("the URL has no host")
    commands: list[tuple[str, ...]] = []
    if parts.password:
        password = unquote(parts.password)
        # Redis 6 ACLs take a user; "redis://:pw@host" is the default user's password.
        user = unquote(parts.username) if parts.username else ""
        commands.append(("AUTH", user, password) if user else ("AUTH", password))
    database = parts.path.lstrip("/")
    if database:
        if not database.isdigit():
            raise RedisError(f"the database in the URL must be a number, not {database[:20]!r}")
        commands.append(("SELECT", database))
    commands.append(("PING",))
    return RedisTarget(parts.hostname, port, parts.scheme == "rediss", tuple(commands))


def encode_command(arguments: tuple[str, ...]) -> bytes:
    """A RESP array of bulk strings: ``*2\\r\\n$4\\r\\nAUTH\\r\\n$2\\r\\npw\\r\\n``."""
    out = [f"*{len(arguments)}\r\n".encode()]
    for argument in arguments:
        data = argument.encode("utf-8")
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


async def _ping(target: RedisTarget) -> None:
    try:
        reader, writer = await asyncio.open_connection(
            target.host,
            target.port,
            ssl=client_context(True) if target.tls else None,
            server_hostname=target.host if target.tls else None,
        )
    except OSError as exc:
        raise RedisError(describe_error(exc, target.host)) from None
    try:
        writer.write(b"".join(encode_command(c) for c in target.commands))
        for command in target.commands:
            reply = await _read_reply(reader)
            _expect(command[0], reply)
    except OSError as exc:
        raise RedisError(describe_error(exc, target.host)) from None
    finally:
        writer.transport.abort()  # the replies are read; a TLS close would wait on the peer


async def _read_reply(reader: asyncio.StreamReader) -> bytes:
    """One simple-string or error reply line, without its CRLF."""
    try:
        line = await reader.readuntil(b"\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise RedisError("the server closed the connection without answering") from None
        raise RedisError(_not_resp(exc.partial)) from None
    except asyncio.LimitOverrunError:
        raise RedisError("the server sent a line too long for a reply to PING") from None
    return line[:-2]


def _expect(command: str, reply: bytes) -> None:
    kind = reply[:1]
    text = reply[1:].decode("utf-8", "replace")
    if kind == b"-":
        raise RedisError(f"redis answered: {text}")
    if kind not in (b"+", b":", b"$", b"*"):
        raise RedisError(_not_resp(reply))
    expected = "PONG" if command == "PING" else "OK"
    if kind != b"+" or text != expected:
        raise RedisError(f"redis answered {command} with {_preview(reply)}, expected +{expected}")


def _not_resp(data: bytes) -> str:
    return f"the server did not answer with RESP: {_preview(data)}"


def _preview(data: bytes) -> str:
    shown = repr(bytes(data[:_PREVIEW]))
    return shown + "..." if len(data) > _PREVIEW else shown
