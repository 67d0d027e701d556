"""The Redis check: the machine's real Redis, and a fake one that requires a password."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from opsbook.probes.checks import run_check
from opsbook.probes.checks.redis import encode_command
from opsbook.probes.specs import RedisCheck
from tests.probes.servers import HttpServer, RespServer, SilentServer

TIMEOUT = 2.0


def at(server: RespServer, userinfo: str = "", path: str = "/0") -> str:
    return f"redis://{userinfo}127.0.0.1:{server.port}{path}"


@pytest.mark.redis
async def test_real_redis_answers_pong(redis_url: str) -> None:
    result = await run_check(RedisCheck(url=redis_url), TIMEOUT)

    assert result.success, result.error
    assert 0 < result.duration_s < TIMEOUT


@pytest.mark.redis
async def test_real_redis_without_a_password_refuses_auth_quietly(redis_url: str) -> None:
    url = redis_url.replace("redis://", "redis://:unused-pw-99@")

    result = await run_check(RedisCheck(url=url), TIMEOUT)

    assert result.error is not None
    assert result.error.startswith("redis answered: ")
    assert "unused-pw-99" not in result.error


async def test_password_auth_select_and_ping(resp_server: RespServer) -> None:
    result = await run_check(RedisCheck(url=at(resp_server, ":hunter2-secret@", "/3")), TIMEOUT)

    assert result.success, result.error
    assert resp_server.commands == [["AUTH", "hunter2-secret"], ["SELECT", "3"], ["PING"]]


async def test_acl_user_and_encoded_password(resp_server: RespServer) -> None:
    resp_server.password = "p@ss:w/rd"
    url = at(resp_server, f"probe:{quote(resp_server.password, safe='')}@", "")

    result = await run_check(RedisCheck(url=url), TIMEOUT)

    assert result.success, result.error
    assert resp_server.commands == [["AUTH", "probe", "p@ss:w/rd"], ["PING"]]


async def test_missing_password(resp_server: RespServer) -> None:
    result = await run_check(RedisCheck(url=at(resp_server)), TIMEOUT)

    assert result.error == "redis answered: NOAUTH Authentication required."


async def test_wrong_password_is_never_shown(resp_server: RespServer) -> None:
    result = await run_check(RedisCheck(url=at(resp_server, ":wrong-s3cret@")), TIMEOUT)

    assert result.error == (
        "redis answered: WRONGPASS invalid username-password pair or user is disabled."
    )
    assert "s3cret" not in str(result)


async def test_garbage_instead_of_resp(resp_server: RespServer) -> None:
    resp_server.mode = "garbage"

    result = await run_check(RedisCheck(url=at(resp_server, ":hunter2-secret@")), TIMEOUT)

    assert result.error == "the server did not answer with RESP: b'HTTP/1.1 400 Bad Request'"
    assert "hunter2" not in result.error


async def test_closed_port(unused_tcp_port_url: str) -> None:
    result = await run_check(RedisCheck(url=f"redis://:pw-123@{unused_tcp_port_url}"), TIMEOUT)

    assert result.error == "connection refused"


async def test_silent_server_times_out(silent_server: SilentServer) -> None:
    result = await run_check(RedisCheck(url=f"redis://127.0.0.1:{silent_server.port}"), 0.3)

    assert result.error == "timed out after 300ms"


async def test_rediss_verifies_the_certificate(https_server: HttpServer) -> None:
    url = f"rediss://:hunter2-secret@127.0.0.1:{https_server.port}/0"

    result = await run_check(RedisCheck(url=url), TIMEOUT)

    assert result.error is not None
    assert result.error.startswith("TLS certificate verification failed: ")


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://127.0.0.1:6379", "the URL must start with redis:// or rediss://"),
        ("redis://127.0.0.1:6379/one", "the database in the URL must be a number, not 'one'"),
        ("redis://127.0.0.1:99999", "invalid URL: Port out of range 0-65535"),
    ],
)
async def test_bad_urls(url: str, error: str) -> None:
    assert (await run_check(RedisCheck(url=url), TIMEOUT)).error == error


def test_commands_are_resp_arrays_of_bulk_strings() -> None:
    assert encode_command(("AUTH", "pw")) == b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"
    assert encode_command(("AUTH", "pâss")) == b"*2\r\n$4\r\nAUTH\r\n$5\r\np\xc3\xa2ss\r\n"
