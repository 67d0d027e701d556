from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

import opsbook.instrument
from opsbook.instrument.sqlalchemy import operation_of, shorten
from tests.instrument.conftest import LogFile, sample


def app_with_queries(engine: sa.Engine, slow_sql: str) -> FastAPI:
    app = FastAPI()

    @app.get("/report")
    def report() -> dict[str, int]:
        with engine.connect() as conn:
            conn.execute(sa.text(slow_sql), {"secret": "card-4111111111111111"})
            value = conn.execute(sa.text("SELECT 1")).scalar_one()
        return {"value": int(value)}

    return app


@pytest.mark.postgres
async def test_slow_queries_are_logged_with_request_id_and_never_parameters(
    make_client: Callable[..., httpx.AsyncClient],
    log_file: LogFile,
    registry: CollectorRegistry,
    postgres_url: str,
) -> None:
    engine = sa.create_engine(postgres_url)
    try:
        opsbook.instrument.sqlalchemy(engine, threshold_ms=40, registry=registry)
        slow_sql = "SELECT pg_sleep(0.06),\n       length(:secret)   AS n"
        async with make_client(app_with_queries(engine, slow_sql)) as c:
            response = await c.get("/report", headers={"X-Request-ID": "sql-req-1"})
        assert response.status_code == 200
    finally:
        engine.dispose()
    [slow] = log_file.where(logger="opsbook.sql")
    assert slow["level"] == "WARNING"
    assert slow["message"] == "slow query"
    assert slow["statement"] == "SELECT pg_sleep(0.06), length(%(secret)s) AS n"
    assert slow["operation"] == "SELECT"
    assert slow["duration_ms"] >= 40
    assert slow["request_id"] == "sql-req-1"
    assert "4111111111111111" not in log_file.path.read_text()
    # Both statements are in the histogram; only the slow one was logged.
    assert sample(registry, "db_query_duration_seconds_count", operation="SELECT") >= 2
    assert sample(registry, "db_query_duration_seconds_bucket", operation="SELECT", le="0.05") >= 1


async def test_long_statements_are_truncated(
    make_client: Callable[..., httpx.AsyncClient],
    log_file: LogFile,
    registry: CollectorRegistry,
    tmp_path: Path,
) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        opsbook.instrument.sqlalchemy(
            engine, threshold_ms=0, statement_max_chars=40, registry=registry
        )
        long_sql = "SELECT " + ", ".join(f"{i} AS column_{i}" for i in range(50))
        async with make_client(app_with_queries(engine, long_sql)) as c:
            assert (await c.get("/report")).status_code == 200
    finally:
        engine.dispose()
    lines = log_file.where(logger="opsbook.sql")
    assert len(lines) == 2  # threshold 0: every statement
    assert len(lines[0]["statement"]) == 40 and lines[0]["statement"].endswith("…")


async def test_failed_statements_do_not_confuse_timing(
    registry: CollectorRegistry, tmp_path: Path
) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    opsbook.instrument.sqlalchemy(engine, threshold_ms=10_000, registry=registry)
    with engine.connect() as conn:
        with pytest.raises(sa.exc.OperationalError):
            conn.execute(sa.text("SELECT * FROM no_such_table"))
        conn.execute(sa.text("SELECT 1"))
        assert conn.info["opsbook_query_start"] == []
    engine.dispose()
    assert sample(registry, "db_query_duration_seconds_count", operation="SELECT") == 1


def test_operation_labels_are_bounded() -> None:
    assert operation_of("  select 1") == "SELECT"
    assert operation_of("/* app=x */ INSERT INTO t VALUES (1)") == "INSERT"
    assert operation_of("WITH x AS (SELECT 1) SELECT * FROM x") == "WITH"
    assert operation_of("VACUUM") == "OTHER"
    assert operation_of("") == "OTHER"
    assert shorten("a\n   b\tc", 100) == "a b c"
