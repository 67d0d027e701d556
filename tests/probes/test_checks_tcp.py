"""The TCP check: open, closed and TLS ports, and "this port must be closed"."""

from __future__ import annotations

import re
import ssl

from opsbook.probes.checks import run_check
from opsbook.probes.conditions import parse_condition
from opsbook.probes.specs import TcpCheck
from tests.probes.conftest import SelfSigned
from tests.probes.servers import HttpServer, SilentServer

TIMEOUT = 2.0


def tcp(address: str, *conditions: str, tls: bool = False, verify_tls: bool = True) -> TcpCheck:
    host, _, port = address.rpartition(":")
    return TcpCheck(
        host=host,
        port=int(port),
        tls=tls,
        verify_tls=verify_tls,
        conditions=tuple(parse_condition(c) for c in conditions),
    )


async def test_listening_port_connects(silent_server: SilentServer) -> None:
    result = await run_check(tcp(f"127.0.0.1:{silent_server.port}"), TIMEOUT)

    assert result.success, result.error
    assert 0 <= result.duration_s < TIMEOUT
    assert result.cert_expiry_unix_s is None
    assert result.status_code is None


async def test_closed_port_is_refused(unused_tcp_port_url: str) -> None:
    result = await run_check(tcp(unused_tcp_port_url), TIMEOUT)

    assert result.error == "connection refused"


async def test_a_port_that_must_be_closed(unused_tcp_port_url: str) -> None:
    result = await run_check(tcp(unused_tcp_port_url, "[CONNECTED] == false"), TIMEOUT)

    assert result.success, result.error


async def test_a_port_that_must_be_closed_but_is_open(silent_server: SilentServer) -> None:
    check = tcp(f"127.0.0.1:{silent_server.port}", "[CONNECTED] == false")

    result = await run_check(check, TIMEOUT)

    assert result.error == "[CONNECTED] == false failed (true)"


async def test_failed_condition_on_a_closed_port_says_why(unused_tcp_port_url: str) -> None:
    check = tcp(unused_tcp_port_url, "[CONNECTED] == true", "[RESPONSE_TIME] < 100")

    result = await run_check(check, TIMEOUT)

    assert result.error == (
        "[CONNECTED] == true failed (false); "
        "[RESPONSE_TIME] < 100 failed (no response time (the request did not complete)); "
        "connection refused"
    )


async def test_response_time_condition(silent_server: SilentServer) -> None:
    check = tcp(f"127.0.0.1:{silent_server.port}", "[CONNECTED] == true", "[RESPONSE_TIME] < 1s")

    assert (await run_check(check, TIMEOUT)).success


async def test_unresolvable_host() -> None:
    result = await run_check(TcpCheck(host="nonexistent.invalid", port=80), TIMEOUT)

    assert result.error is not None
    assert result.error.startswith("cannot resolve nonexistent.invalid: ")


async def test_tls_port_reports_its_certificate(
    https_server: HttpServer, self_signed: SelfSigned
) -> None:
    address = f"127.0.0.1:{https_server.port}"
    check = tcp(address, "[CONNECTED] == true", "[CERT_EXPIRY] > 168h", tls=True, verify_tls=False)

    result = await run_check(check, TIMEOUT)

    assert result.success, result.error
    assert result.cert_expiry_unix_s == ssl.cert_time_to_seconds(self_signed.not_after())


async def test_tls_certificate_expiry_too_soon(https_server: HttpServer) -> None:
    check = tcp(f"127.0.0.1:{https_server.port}", "[CERT_EXPIRY] > 60d", tls=True, verify_tls=False)

    result = await run_check(check, TIMEOUT)

    # 30 days from when openssl made it, minus the moments since (shown to the second).
    assert re.fullmatch(
        r"\[CERT_EXPIRY\] > 60d failed \((30d|29d23h[0-9hms]+)\)", str(result.error)
    )


async def test_tls_verification_failure_fails_whatever_the_conditions(
    https_server: HttpServer,
) -> None:
    check = tcp(f"127.0.0.1:{https_server.port}", "[CONNECTED] == false", tls=True)

    result = await run_check(check, TIMEOUT)

    assert result.error is not None
    assert result.error.startswith("TLS certificate verification failed: ")


async def test_tls_handshake_that_never_completes_times_out(
    silent_server: SilentServer,
) -> None:
    check = tcp(f"127.0.0.1:{silent_server.port}", tls=True)

    result = await run_check(check, 0.3)

    assert result.error == "timed out after 300ms"
    assert 0.3 <= result.duration_s < 1.3


async def test_tls_to_a_plain_port_fails_the_handshake(http_server: HttpServer) -> None:
    result = await run_check(tcp(f"127.0.0.1:{http_server.port}", tls=True), TIMEOUT)

    assert result.error is not None
    assert result.error.startswith("TLS handshake failed: ")
