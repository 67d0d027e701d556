"""The DNS check: resolve a name through a given server (UDP), or the system resolver.

With ``server``, the query is built by hand (RFC 1035: header, one question, RD set) and sent over
UDP; the answer's A/AAAA records of the asked type are collected, CNAMEs and other records are
skipped (a recursive server puts the chain's addresses in the answer). Without ``server`` the
system resolver answers (``getaddrinfo``), which is what the services themselves use.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
import struct
import time
from typing import cast

from opsbook.probes.checks._common import describe_error, failure
from opsbook.probes.results import CheckResult
from opsbook.probes.specs import DnsCheck

_perf_counter = time.perf_counter

DEFAULT_PORT = 53
QTYPES = {"A": 1, "AAAA": 28}
_CLASS_IN = 1
_ADDRESS_SIZE = {1: 4, 28: 16}
_RCODE_NAMES = {
    1: "format error (FORMERR)",
    2: "server failure (SERVFAIL)",
    3: "no such name (NXDOMAIN)",
    4: "not implemented (NOTIMP)",
    5: "refused (REFUSED)",
}
_HEADER = struct.Struct("!HHHHHH")
_RECORD = struct.Struct("!HHIH")  # type, class, TTL, RDLENGTH


class DnsError(Exception):
    """The lookup failed; ``str()`` is the reason for users."""


async def check_dns(check: DnsCheck) -> CheckResult:
    started = _perf_counter()
    try:
        if check.server is None:
            addresses = await resolve_system(check.name, check.record_type)
        else:
            host, port = parse_server(check.server)
            addresses = await resolve_udp(check.name, check.record_type, host, port)
    except DnsError as exc:
        return failure(started, str(exc))
    error = judge_addresses(check, addresses)
    if error is not None:
        return failure(started, error)
    return CheckResult(success=True, duration_s=_perf_counter() - started)


def judge_addresses(check: DnsCheck, addresses: list[str]) -> str | None:
    """None when the name resolved to every expected address (and at least one), else why."""
    if not addresses:
        return f"{check.name} has no {check.record_type} record"
    found = {_normalized(a) for a in addresses}
    if all(_normalized(e) in found for e in check.expect):
        return None
    return f"resolved to {', '.join(addresses)}, expected {', '.join(check.expect)}"


def _normalized(address: str) -> str:
    """``::0001`` and ``::1`` are the same address; compare them as such."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


def parse_server(server: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port``, ``host`` or a bare IPv6 address; the port defaults to 53."""
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif server.count(":") == 1:
        host, _, port_text = server.partition(":")
    else:
        host, port_text = server, ""  # a name, an IPv4 address or a bare IPv6 address
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise DnsError(f"invalid DNS server {server!r}: the port must be a number 1-65535")
    return host, int(port_text)


# The system resolver


async def resolve_system(name: str, record_type: str) -> list[str]:
    family = socket.AF_INET if record_type == "A" else socket.AF_INET6
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(name, None, family=family, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DnsError(f"cannot resolve {name}: {exc.strerror or exc}") from None
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


# Our own UDP query


async def resolve_udp(name: str, record_type: str, host: str, port: int) -> list[str]:
    qtype = QTYPES[record_type]
    query_id = secrets.randbits(16)
    query = build_query(query_id, name, qtype)
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[bytes] = loop.create_future()
    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Exchange(query, query_id, answered), remote_addr=(host, port)
        )
    except OSError as exc:
        raise DnsError(describe_error(exc, host)) from None
    try:
        response = await answered
    finally:
        transport.close()
    return parse_response(response, query_id, qtype)


class _Exchange(asyncio.DatagramProtocol):
    """Sends the query; keeps the first datagram that answers it (same id, QR set)."""

    def __init__(self, query: bytes, query_id: int, answered: asyncio.Future[bytes]) -> None:
        self._query = query
        self._query_id = query_id
        self._answered = answered

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # cast: 3.11's selector datagram transport does not subclass DatagramTransport.
        cast(asyncio.DatagramTransport, transport).sendto(self._query)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        # Stray or spoofed datagrams (another id) are ignored rather than failing the check.
        if self._answered.done() or len(data) < _HEADER.size:
            return
        if _HEADER.unpack_from(data)[0] == self._query_id:
            self._answered.set_result(data)

    def error_received(self, exc: Exception) -> None:
        # On a connected UDP socket, an ICMP "port unreachable" arrives here as ECONNREFUSED.
        if not self._answered.done():
            self._answered.set_exception(DnsError(f"the DNS server: {describe_error(exc)}"))


def build_query(query_id: int, name: str, qtype: int) -> bytes:
    """A standard query for ``name``: one question, recursion desired (RFC 1035 4.1)."""
    header = _HEADER.pack(query_id, 0x0100, 1, 0, 0, 0)
    return header + encode_name(name) + struct.pack("!HH", qtype, _CLASS_IN)


def encode_name(name: str) -> bytes:
    try:
        encoded = name.rstrip(".").encode("idna") if name.strip(".") else b""
    except UnicodeError as exc:
        raise DnsError(f"invalid name {name!r}: {exc}") from None
    labels = encoded.split(b".") if encoded else []
    if any(not label or len(label) > 63 for label in labels) or len(encoded) > 253:
        raise DnsError(f"invalid name {name!r}")
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


def parse_response(message: bytes, query_id: int, qtype: int) -> list[str]:
    """The addresses of type ``qtype`` in the answer section of ``message``."""
    try:
        return _parse_response(message, query_id, qtype)
    except (struct.error, IndexError):
        raise DnsError("the DNS server sent a malformed answer (truncated message)") from None


def _parse_response(message: bytes, query_id: int, qtype: int) -> list[str]:
    answer_id, flags, questions, answers, _, _ = _HEADER.unpack_from(message)
    if answer_id != query_id or not flags & 0x8000:
        raise DnsError("the DNS server sent a malformed answer (not a response to the query)")
    rcode = flags & 0x000F
    if rcode:
        raise DnsError(_RCODE_NAMES.get(rcode, f"the DNS server answered with RCODE {rcode}"))
    position = _HEADER.size
    for _ in range(questions):
        position = skip_name(message, position) + 4  # QTYPE, QCLASS
    addresses: list[str] = []
    size = _ADDRESS_SIZE[qtype]
    for _ in range(answers):
        position = skip_name(message, position)
        rtype, rclass, _ttl, length = _RECORD.unpack_from(message, position)
        position += _RECORD.size
        data = message[position : position + length]
        if len(data) != length:
            raise IndexError("record data past the end")
        position += length
        if rtype == qtype and rclass == _CLASS_IN and length == size:
            family = socket.AF_INET if qtype == 1 else socket.AF_INET6
            addresses.append(socket.inet_ntop(family, data))
    if not addresses and flags & 0x0200:
        raise DnsError("the DNS answer was truncated (TC) and held no address; TCP is not tried")
    return addresses


def skip_name(message: bytes, position: int) -> int:
    """The position after the (possibly compressed) name at ``position``.

    A compression pointer (two bytes, top bits 11) ends the name where it stands, so skipping
    never follows pointers and cannot loop.
    """
    while True:
        length = message[position]
        if length == 0:
            return position + 1
        if length & 0xC0 == 0xC0:
            if position + 1 >= len(message):
                raise IndexError("pointer past the end")
            return position + 2
        if length & 0xC0:
            raise DnsError("the DNS server sent a malformed answer (unknown label type)")
        position += 1 + length
