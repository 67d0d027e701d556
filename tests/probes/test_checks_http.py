"""The HTTP check against a real loopback server: what users see for each way a service answers."""

from __future__ import annotations

import asyncio
import re
import ssl

import pytest

import opsbook
from opsbook.probes import checks
from opsbook.probes.checks import run_check
from opsbook.probes.checks.http_client import _prepare
from opsbook.probes.conditions import parse_condition
from opsbook.probes.results import CheckResult, ComponentCheck
from opsbook.probes.specs import HttpCheck
from tests.probes.conftest import SelfSigned
from tests.probes.servers import HttpServer

TIMEOUT = 2.0
SHORT = 0.3


def http(url: str, *conditions: str, **options: object) -> HttpCheck:
    return HttpCheck(
        url=url,
        conditions=tuple(parse_condition(c) for c in conditions),
        **options,  # type: ignore[arg-type]
    )


def assert_sane(result: CheckResult, timeout: float = TIMEOUT) -> None:
    assert 0 <= result.duration_s < timeout + 1.0
    assert (result.error is None) == result.success


# Health+json


async def test_healthy_service_passes_with_its_components(http_server: HttpServer) -> None:
    result = await run_check(http(http_server.url + "/health"), TIMEOUT)

    assert result.success, result.error
    assert result.status_code == 200
    assert result.health_status == "pass"
    assert result.components == (
        ComponentCheck("database", "responseTime", "pass", 3.5, "ms"),
        ComponentCheck("disk", "utilization", "pass", 40.0, "percent"),
        ComponentCheck("uptime", "", "pass", 301.0, "s"),
    )
    assert result.cert_expiry_unix_s is None
    assert_sane(result)


async def test_the_request_is_one_fresh_closed_connection(http_server: HttpServer) -> None:
    await run_check(http(http_server.url + "/health?verbose=1"), TIMEOUT)

    request = http_server.requests[-1]
    assert (request.method, request.path) == ("GET", "/health?verbose=1")
    assert request.headers["host"] == f"127.0.0.1:{http_server.port}"
    assert request.headers["user-agent"] == f"opsbook-probe/{opsbook.__version__}"
    assert request.headers["accept"] == "*/*"
    assert request.headers["connection"] == "close"
    assert "content-length" not in request.headers


async def test_failing_service_fails_with_its_failing_component(http_server: HttpServer) -> None:
    http_server.mode = "failing"

    result = await run_check(http(http_server.url), TIMEOUT)

    assert not result.success
    assert result.error == "HTTP status 503 (expected 2xx)"
    assert result.status_code == 503
    assert result.health_status == "fail"
    database = result.components[0]
    assert (database.component, database.measurement, database.status) == (
        "database",
        "responseTime",
        "fail",
    )
    assert database.observed_value == 5000.0
    assert database.output == "connection pool exhausted"
    assert_sane(result)


async def test_warning_service_still_passes_and_reports_warn(http_server: HttpServer) -> None:
    http_server.mode = "warn"

    result = await run_check(http(http_server.url), TIMEOUT)

    assert result.success
    assert result.health_status == "warn"
    disk = next(c for c in result.components if c.component == "disk")
    assert (disk.status, disk.observed_value, disk.observed_unit) == ("warn", 91.5, "percent")


async def test_plain_json_with_checks_counts_as_health_and_statuses_are_normalized(
    http_server: HttpServer,
) -> None:
    http_server.mode = "lenient"

    result = await run_check(http(http_server.url), TIMEOUT)

    assert result.success
    assert result.health_status == "pass"  # "UP"
    assert result.components == (
        ComponentCheck("cache", "hitRatio", "pass", 0.93),  # a lone entry, "ok"
        ComponentCheck("rabbit-1", "", "fail"),  # componentId wins; `true` is no number
        ComponentCheck("search", "latency", "fail"),  # text value and non-text output dropped
    )


async def test_other_bodies_have_no_health(http_server: HttpServer) -> None:
    http_server.mode = "not-json"

    result = await run_check(http(http_server.url), TIMEOUT)

    assert result.success
    assert result.health_status is None
    assert result.components == ()


async def test_health_json_that_is_not_json_fails_the_attempt(http_server: HttpServer) -> None:
    http_server.mode = "bad-health-json"

    result = await run_check(http(http_server.url), TIMEOUT)

    assert not result.success
    assert result.error is not None
    assert result.error.startswith("the body is not valid application/health+json: ")
    assert result.status_code == 200


async def test_health_json_that_is_not_an_object_fails_the_attempt(
    http_server: HttpServer,
) -> None:
    http_server.mode = "health-json-array"

    result = await run_check(http(http_server.url), TIMEOUT)

    assert result.error == "the body is not valid application/health+json: not a JSON object"


# Conditions


async def test_all_conditions_must_hold(http_server: HttpServer) -> None:
    check = http(
        http_server.url, "[STATUS] == 200", "[BODY].status == pass", "[RESPONSE_TIME] < 1500"
    )

    assert (await run_check(check, TIMEOUT)).success

    http_server.mode = "failing"
    result = await run_check(check, TIMEOUT)

    assert not result.success
    assert result.error == "[STATUS] == 200 failed (503); [BODY].status == pass failed (fail)"
    assert result.health_status == "fail"  # the components are read whatever the verdict


async def test_a_condition_replaces_the_2xx_rule(http_server: HttpServer) -> None:
    http_server.mode = "failing"

    result = await run_check(http(http_server.url, "[STATUS] == 503"), TIMEOUT)

    assert result.success
    assert result.status_code == 503


async def test_json_path_into_a_body_that_is_not_json(http_server: HttpServer) -> None:
    http_server.mode = "not-json"

    result = await run_check(http(http_server.url, "[BODY].status == pass"), TIMEOUT)

    assert result.error == "[BODY].status == pass failed (the body is not JSON)"
    assert result.status_code == 200


async def test_conditions_on_the_body_text(http_server: HttpServer) -> None:
    http_server.mode = "not-json"

    result = await run_check(http(http_server.url, "[BODY] == pat(*fine*)"), TIMEOUT)

    assert result.success


# Framing


async def test_chunked_body_is_reassembled(http_server: HttpServer) -> None:
    http_server.mode = "chunked"

    result = await run_check(http(http_server.url, "[BODY].status == pass"), TIMEOUT)

    assert result.success, result.error
    assert result.health_status == "pass"
    assert len(result.components) == 3


async def test_close_delimited_body_is_read_to_the_end(http_server: HttpServer) -> None:
    http_server.mode = "close-delimited"

    result = await run_check(http(http_server.url), TIMEOUT)

    assert result.success, result.error
    assert result.health_status == "warn"


async def test_head_reads_no_body_even_with_a_content_length(http_server: HttpServer) -> None:
    result = await run_check(http(http_server.url, method="HEAD"), TIMEOUT)

    assert result.success, result.error
    assert http_server.requests[-1].method == "HEAD"
    assert result.health_status is None  # no body to read
    assert result.duration_s < TIMEOUT / 2  # did not wait for the announced body


async def test_no_content_has_no_body(http_server: HttpServer) -> None:
    http_server.mode = "no-content"

    result = await run_check(http(http_server.url), TIMEOUT)

    assert result.success
    assert result.status_code == 204


async def test_body_over_the_limit_fails(http_server: HttpServer) -> None:
    http_server.mode = "huge"

    result = await run_check(http(http_server.url, max_body_bytes=1000), TIMEOUT)

    assert result.error == "the body is larger than 1000 bytes"
    assert (await run_check(http(http_server.url, max_body_bytes=5000), TIMEOUT)).success


async def test_close_delimited_body_over_the_limit_fails(http_server: HttpServer) -> None:
    http_server.mode = "huge-close-delimited"

    result = await run_check(http(http_server.url, max_body_bytes=1000), TIMEOUT)

    assert result.error == "the body is larger than 1000 bytes"


async def test_body_cut_short_fails(http_server: HttpServer) -> None:
    http_server.mode = "early-close"

    result = await run_check(http(http_server.url), TIMEOUT)

    assert result.error == (
        "the server closed the connection before the end of the body (got 9 of 100 bytes)"
    )


# Not HTTP, not there, too slow


async def test_garbage_instead_of_http(http_server: HttpServer) -> None:
    http_server.mode = "garbage"

    result = await run_check(http(http_server.url), TIMEOUT)

    assert result.error == (
        "the server did not answer with HTTP: b'SSH-2.0-OpenSSH_9.2p1 Debian-2\\r\\n'"
    )
    assert result.status_code is None
    assert_sane(result)


async def test_slow_server_times_out(http_server: HttpServer) -> None:
    http_server.mode = "slow"

    result = await run_check(http(http_server.url), SHORT)

    assert result.error == "timed out after 300ms"
    assert SHORT <= result.duration_s < SHORT + 1.0


async def test_sub_millisecond_timeouts_are_spelled_in_seconds(http_server: HttpServer) -> None:
    http_server.mode = "slow"

    result = await run_check(http(http_server.url), 0.0005)

    assert result.error == "timed out after 0.0005s"


async def test_closed_port_is_refused(unused_tcp_port_url: str) -> None:
    result = await run_check(http(f"http://{unused_tcp_port_url}/health"), TIMEOUT)

    assert result.error == "connection refused"
    assert_sane(result)


async def test_unresolvable_host() -> None:
    result = await run_check(http("http://nonexistent.invalid/"), TIMEOUT)

    assert result.error is not None
    assert result.error.startswith("cannot resolve nonexistent.invalid: ")


async def test_unsupported_url() -> None:
    result = await run_check(http("ftp://user:s3cret@example.com/file"), TIMEOUT)

    assert result.error == "unsupported URL 'ftp://example.com/file': only http:// and https://"


async def test_ipv6_literal() -> None:
    server = HttpServer(host="::1")
    server.start()
    try:
        result = await run_check(http(server.url + "/v6"), TIMEOUT)
        assert result.success, result.error
        assert server.requests[-1].headers["host"] == f"[::1]:{server.port}"
    finally:
        server.close()


def test_default_ports_and_host_headers() -> None:
    plain = _prepare("http://Example.com/a%20b?x=1#frag", "GET", (), -1)
    secure = _prepare("https://[2001:db8::1]/", "GET", (), -1)

    assert (plain.host, plain.port, plain.tls) == ("example.com", 80, False)
    assert plain.head.startswith(b"GET /a%20b?x=1 HTTP/1.1\r\nHost: Example.com\r\n")
    assert (secure.host, secure.port, secure.tls) == ("2001:db8::1", 443, True)
    assert b"\r\nHost: [2001:db8::1]\r\n" in secure.head


# Method, headers, body


async def test_method_headers_and_body_are_sent(http_server: HttpServer) -> None:
    check = http(
        http_server.url + "/submit",
        method="POST",
        headers=(("X-Probe", "yes"), ("user-agent", "custom/1"), ("Content-Length", "999")),
        body=b'{"ping": 1}',
    )

    assert (await run_check(check, TIMEOUT)).success

    request = http_server.requests[-1]
    assert request.method == "POST"
    assert request.body == b'{"ping": 1}'
    assert request.headers["content-length"] == "11"  # ours, not the check's
    assert request.headers["x-probe"] == "yes"
    assert request.headers["user-agent"] == "custom/1"


async def test_header_injection_is_refused(http_server: HttpServer) -> None:
    check = http(http_server.url, headers=(("X-Evil", "a\r\nHost: other"),))

    result = await run_check(check, TIMEOUT)

    assert result.error == "invalid request header 'X-Evil'"
    assert http_server.requests == []


# Redirects


async def test_redirects_are_followed(http_server: HttpServer) -> None:
    http_server.mode = "redirects"

    result = await run_check(http(http_server.url + "/r/5"), TIMEOUT)

    assert result.success, result.error
    assert result.status_code == 200
    assert result.health_status == "pass"
    assert [r.path for r in http_server.requests] == [f"/r/{n}" for n in range(5, -1, -1)]


async def test_redirects_are_not_followed_when_disabled(http_server: HttpServer) -> None:
    http_server.mode = "redirects"

    result = await run_check(http(http_server.url + "/r/2", follow_redirects=False), TIMEOUT)

    assert result.error == "HTTP status 301 (expected 2xx)"
    assert result.status_code == 301


async def test_see_other_turns_into_a_get_without_body(http_server: HttpServer) -> None:
    http_server.mode = "redirects"
    check = http(http_server.url + "/see-other", method="POST", body=b"form=1")

    result = await run_check(check, TIMEOUT)

    assert result.success, result.error
    first, second = http_server.requests
    assert (first.method, first.body) == ("POST", b"form=1")
    assert (second.method, second.path, second.body) == ("GET", "/r/0", b"")
    assert "content-length" not in second.headers


async def test_redirect_loop_stops_after_ten(http_server: HttpServer) -> None:
    http_server.mode = "redirect-loop"

    result = await run_check(http(http_server.url + "/loop"), TIMEOUT)

    assert result.error == "too many redirects (more than 10)"
    assert len(http_server.requests) == 11


# Credentials


async def test_basic_auth_from_the_url(http_server: HttpServer) -> None:
    http_server.mode = "auth"
    url = f"http://probe:p%40ss%20w0rd@127.0.0.1:{http_server.port}/private"

    result = await run_check(http(url), TIMEOUT)

    assert result.success, result.error


async def test_wrong_password_fails_without_showing_it(http_server: HttpServer) -> None:
    http_server.mode = "auth"
    url = f"http://probe:wrong-s3cret@127.0.0.1:{http_server.port}/private"

    result = await run_check(http(url, "[STATUS] == 200", "[BODY] == welcome"), TIMEOUT)

    assert result.error == "[STATUS] == 200 failed (401); [BODY] == welcome failed (who are you?)"
    assert "s3cret" not in str(result)


@pytest.mark.parametrize("mode", ["garbage", "early-close", "bad-health-json"])
async def test_passwords_never_appear_in_errors(http_server: HttpServer, mode: str) -> None:
    http_server.mode = mode
    url = f"http://admin:s3cr%65t-pw@127.0.0.1:{http_server.port}/"

    result = await run_check(http(url), TIMEOUT)

    assert result.error is not None
    assert "s3cr" not in result.error


async def test_a_library_message_with_the_password_is_scrubbed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def leaky(check: HttpCheck) -> CheckResult:
        return CheckResult(success=False, duration_s=0.0, error=f"could not use {check.url}")

    monkeypatch.setattr(checks, "check_http", leaky)

    result = await run_check(http("http://admin:s3cr%65t@host/"), TIMEOUT)

    assert result.error == "could not use http://admin:***@host/"


# The contract of run_check


async def test_cancellation_propagates(http_server: HttpServer) -> None:
    http_server.mode = "slow"
    task = asyncio.create_task(run_check(http(http_server.url), 5.0))
    await asyncio.sleep(0.1)

    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_crashing_check_becomes_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    async def crash(check: HttpCheck) -> CheckResult:
        raise RuntimeError("boom")

    monkeypatch.setattr(checks, "check_http", crash)

    result = await run_check(http("http://127.0.0.1:1/"), TIMEOUT)

    assert result.error == "the check failed unexpectedly: boom"


# HTTPS


async def test_https_without_verification_reads_the_certificate_expiry(
    https_server: HttpServer, self_signed: SelfSigned
) -> None:
    result = await run_check(http(https_server.url, verify_tls=False), TIMEOUT)

    assert result.success, result.error
    assert result.health_status == "pass"
    assert result.cert_expiry_unix_s == ssl.cert_time_to_seconds(self_signed.not_after())


async def test_https_with_verification_rejects_a_self_signed_certificate(
    https_server: HttpServer,
) -> None:
    result = await run_check(http(https_server.url), TIMEOUT)

    assert result.error is not None
    assert result.error.startswith("TLS certificate verification failed: ")
    assert "self" in result.error  # "self-signed certificate" (wording varies by OpenSSL)


async def test_certificate_expiry_conditions(https_server: HttpServer) -> None:
    week = http(https_server.url, "[CERT_EXPIRY] > 168h", verify_tls=False)
    two_months = http(https_server.url, "[CERT_EXPIRY] > 60d", verify_tls=False)

    assert (await run_check(week, TIMEOUT)).success
    result = await run_check(two_months, TIMEOUT)
    # 30 days from when openssl made it, minus the moments since (shown to the second).
    assert re.fullmatch(
        r"\[CERT_EXPIRY\] > 60d failed \((30d|29d23h[0-9hms]+)\)", str(result.error)
    )


async def test_https_to_a_plain_http_server_fails_the_handshake(http_server: HttpServer) -> None:
    url = http_server.url.replace("http://", "https://")

    result = await run_check(http(url), TIMEOUT)

    assert result.error is not None
    assert result.error.startswith("TLS handshake failed: ")


async def test_plain_http_to_a_tls_server_fails(https_server: HttpServer) -> None:
    url = https_server.url.replace("https://", "http://")

    result = await run_check(http(url), TIMEOUT)

    assert not result.success
    assert_sane(result)
