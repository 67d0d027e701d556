"""The PostgreSQL check against the machine's real server (fixture ``postgres_url``)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest

from opsbook.probes.checks import run_check
from opsbook.probes.checks.postgres import libpq_url
from opsbook.probes.specs import PostgresCheck
from tests.probes.servers import SilentServer

TIMEOUT = 5.0


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@pytest.mark.postgres
async def test_reachable_database(postgres_url: str) -> None:
    result = await run_check(PostgresCheck(url=postgres_url), TIMEOUT)

    assert result.success, result.error
    assert 0 < result.duration_s < TIMEOUT
    assert result.status_code is None


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
async def test_libpq_schemes(postgres_url: str, scheme: str) -> None:
    url = f"{scheme}://" + postgres_url.partition("://")[2]

    assert (await run_check(PostgresCheck(url=url), TIMEOUT)).success


@pytest.mark.postgres
async def test_statements_without_rows(postgres_url: str) -> None:
    for query in ("SELECT 1 WHERE false", "SET statement_timeout = 1000"):
        result = await run_check(PostgresCheck(url=postgres_url, query=query), TIMEOUT)
        assert result.success, (query, result.error)


@pytest.mark.postgres
async def test_missing_database(postgres_url: str) -> None:
    url = with_database(postgres_url, "opsbook_no_such_db")

    result = await run_check(PostgresCheck(url=url), TIMEOUT)

    assert result.error == 'database "opsbook_no_such_db" does not exist'


@pytest.mark.postgres
async def test_failing_query(postgres_url: str) -> None:
    result = await run_check(PostgresCheck(url=postgres_url, query="SELECT nope"), TIMEOUT)

    assert result.error == 'the query failed: column "nope" does not exist'


@pytest.mark.postgres
async def test_unknown_user_with_a_password(postgres_url: str) -> None:
    host = urlsplit(postgres_url).netloc.rpartition("@")[2]
    url = f"postgresql://nobody:s3cret@{host}/test"

    result = await run_check(PostgresCheck(url=url), TIMEOUT)

    assert result.error is not None
    # Trust auth says the role is missing; password auth says authentication failed.
    assert '"nobody"' in result.error
    assert "s3cret" not in result.error


async def test_closed_port(unused_tcp_port_url: str) -> None:
    url = f"postgresql://postgres:s3cret@{unused_tcp_port_url}/test"

    result = await run_check(PostgresCheck(url=url), TIMEOUT)

    assert result.error == "connection refused"


async def test_server_that_never_answers_times_out(silent_server: SilentServer) -> None:
    url = f"postgresql://postgres@127.0.0.1:{silent_server.port}/test"

    result = await run_check(PostgresCheck(url=url), 0.5)

    assert result.error == "timed out after 500ms"
    assert 0.5 <= result.duration_s < 1.5


async def test_unresolvable_host() -> None:
    result = await run_check(PostgresCheck(url="postgresql://u:pw1234@nonexistent.invalid/db"), 2)

    assert result.error is not None
    assert "nonexistent.invalid" in result.error
    assert "pw1234" not in result.error


async def test_other_schemes_are_refused() -> None:
    result = await run_check(PostgresCheck(url="mysql://root:pw@127.0.0.1/db"), 2)

    assert result.error == "the URL must start with postgresql:// or postgres://"


def test_driver_suffix_is_dropped() -> None:
    assert libpq_url("postgresql+psycopg://u@h/db") == "postgresql://u@h/db"
    assert libpq_url("postgres://u@h/db?sslmode=disable") == "postgres://u@h/db?sslmode=disable"
    assert libpq_url("host=h dbname=db") is None
