"""The DNS check: our own UDP queries against a loopback DNS server, and the system resolver."""

from __future__ import annotations

import pytest

from opsbook.probes.checks import run_check
from opsbook.probes.checks.dns import (
    DnsError,
    build_query,
    parse_response,
    parse_server,
)
from opsbook.probes.specs import DnsCheck
from tests.conftest import free_port
from tests.probes.servers import DnsServer

TIMEOUT = 2.0


def dns(server: DnsServer, name: str, record_type: str = "A", *expect: str) -> DnsCheck:
    return DnsCheck(name=name, record_type=record_type, server=server.address, expect=expect)  # type: ignore[arg-type]


async def test_a_records(dns_server: DnsServer) -> None:
    result = await run_check(dns(dns_server, "svc.test", "A", "10.0.0.2"), TIMEOUT)

    assert result.success, result.error
    assert 0 < result.duration_s < TIMEOUT
    _, name, qtype = dns_server.queries[-1]
    assert (name, qtype) == ("svc.test", 1)


async def test_aaaa_records_compare_as_addresses(dns_server: DnsServer) -> None:
    result = await run_check(dns(dns_server, "svc.test", "AAAA", "fd00:0::0001"), TIMEOUT)

    assert result.success, result.error
    assert dns_server.queries[-1][2] == 28


async def test_unexpected_addresses(dns_server: DnsServer) -> None:
    result = await run_check(dns(dns_server, "svc.test", "A", "10.0.0.1", "10.0.0.3"), TIMEOUT)

    assert result.error == "resolved to 10.0.0.1, 10.0.0.2, expected 10.0.0.1, 10.0.0.3"


async def test_uncompressed_answer(dns_server: DnsServer) -> None:
    assert (await run_check(dns(dns_server, "plain.test", "A", "10.0.0.9"), TIMEOUT)).success


async def test_cname_chain_addresses_are_collected(dns_server: DnsServer) -> None:
    result = await run_check(dns(dns_server, "alias.test", "A", "10.0.0.1"), TIMEOUT)

    assert result.success, result.error


async def test_no_record_of_the_asked_type(dns_server: DnsServer) -> None:
    result = await run_check(dns(dns_server, "plain.test", "AAAA"), TIMEOUT)

    assert result.error == "plain.test has no AAAA record"


async def test_nxdomain(dns_server: DnsServer) -> None:
    result = await run_check(dns(dns_server, "missing.test"), TIMEOUT)

    assert result.error == "no such name (NXDOMAIN)"


async def test_servfail(dns_server: DnsServer) -> None:
    result = await run_check(dns(dns_server, "broken.test"), TIMEOUT)

    assert result.error == "server failure (SERVFAIL)"


async def test_stray_answers_are_ignored(dns_server: DnsServer) -> None:
    result = await run_check(dns(dns_server, "spoofed.test", "A", "6.6.6.6"), TIMEOUT)

    assert result.error == "resolved to 10.0.0.7, expected 6.6.6.6"


async def test_server_that_never_answers(dns_server: DnsServer) -> None:
    result = await run_check(dns(dns_server, "silent.test"), 0.3)

    assert result.error == "timed out after 300ms"
    assert 0.3 <= result.duration_s < 1.3


async def test_nothing_listening() -> None:
    check = DnsCheck(name="svc.test", server=f"127.0.0.1:{free_port()}")

    result = await run_check(check, TIMEOUT)

    assert result.error == "the DNS server: connection refused"


async def test_query_ids_are_random(dns_server: DnsServer) -> None:
    for _ in range(4):
        await run_check(dns(dns_server, "svc.test"), TIMEOUT)

    assert len({query_id for query_id, _, _ in dns_server.queries}) > 1


# The system resolver


async def test_system_resolver_localhost() -> None:
    result = await run_check(DnsCheck(name="localhost", expect=("127.0.0.1",)), TIMEOUT)

    assert result.success, result.error


async def test_system_resolver_unknown_name() -> None:
    result = await run_check(DnsCheck(name="nonexistent.invalid"), TIMEOUT)

    assert result.error is not None
    assert result.error.startswith("cannot resolve nonexistent.invalid: ")


# The wire format


def test_query_layout() -> None:
    query = build_query(0xBEEF, "api.example.com.", 28)

    assert query[:12] == bytes.fromhex("beef 0100 0001 0000 0000 0000")  # RD, one question
    assert query[12:] == b"\x03api\x07example\x03com\x00\x00\x1c\x00\x01"


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (bytes.fromhex("beef 8180 0001 0001 0000 0000") + b"\x03api", "truncated message"),
        (bytes.fromhex("beee 8180 0000 0000 0000 0000"), "not a response to the query"),
        (bytes.fromhex("beef 0100 0000 0000 0000 0000"), "not a response to the query"),
    ],
)
def test_malformed_answers(message: bytes, error: str) -> None:
    with pytest.raises(DnsError, match=error):
        parse_response(message, 0xBEEF, 1)


def test_refused_and_unknown_rcodes() -> None:
    with pytest.raises(DnsError, match=r"^refused \(REFUSED\)$"):
        parse_response(bytes.fromhex("beef 8185 0000 0000 0000 0000"), 0xBEEF, 1)
    with pytest.raises(DnsError, match="RCODE 9"):
        parse_response(bytes.fromhex("beef 8189 0000 0000 0000 0000"), 0xBEEF, 1)


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("10.0.0.53", ("10.0.0.53", 53)),
        ("10.0.0.53:5353", ("10.0.0.53", 5353)),
        ("ns.example.com:54", ("ns.example.com", 54)),
        ("[::1]:5353", ("::1", 5353)),
        ("[::1]", ("::1", 53)),
        ("fd00::53", ("fd00::53", 53)),
    ],
)
def test_server_addresses(server: str, expected: tuple[str, int]) -> None:
    assert parse_server(server) == expected


def test_bad_server_port() -> None:
    with pytest.raises(DnsError, match="the port must be a number"):
        parse_server("10.0.0.53:dns")
