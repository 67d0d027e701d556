"""``opsbook serve`` probing real things — a loopback service that turns healthy, failing, slow
and garbage, the real PostgreSQL and Redis, a closed port — and ``opsbook status`` reading it,
both from the database while the server runs and through the server's API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from opsbook.cli.main import app
from tests.conftest import free_port
from tests.probes.servers import HttpServer

runner = CliRunner()


@pytest.fixture
def service() -> Iterator[HttpServer]:
    server = HttpServer()
    server.start()
    yield server
    server.close()


def write_config(directory: Path, api_url: str, postgres: str, redis: str, closed: str) -> Path:
    config = directory / "opsbook.yaml"
    config.write_text(
        f"""
project: probes-e2e
services:
  - name: api
    description: The rent optimizer API
    owner: alice@example.com
    team: platform
    tier: 1
    public: true
    links:
      runbook: https://wiki.example.com/runbooks/api
    url: {api_url}
    health:
      url: /health/detailed
      interval: 1s
      timeout: 500ms
      failure_threshold: 2
      conditions:
        - "[STATUS] == 200"
        - "[BODY].status == any(pass, warn)"
    probes:
      - name: db
        type: postgres
        url: {postgres}
        interval: 1s
        timeout: 900ms
      - name: cache
        type: redis
        url: {redis}
        interval: 1s
        timeout: 900ms
    dependencies: [db, cache, legacy]
  - name: legacy
    probes:
      - name: port
        type: tcp
        address: {closed}
        interval: 1s
        timeout: 500ms
        failure_threshold: 1
"""
    )
    return config


def wait_until(
    check: Callable[[], Any], process: subprocess.Popen[bytes], timeout_s: float = 30.0
) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise AssertionError(f"opsbook serve exited with {process.returncode}:\n{output}")
        try:
            last = check()
        except (httpx.HTTPError, KeyError, IndexError):
            last = None
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"condition not met in {timeout_s} s (last: {last!r})")


def status_of(base: str) -> dict[str, dict[str, Any]]:
    data = httpx.get(f"{base}/api/v1/status", timeout=5).json()["data"]
    return {s["service"]: s for s in data}


def query(base: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5).json()
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def test_serve_probes_and_status_reports(
    tmp_path: Path,
    service: HttpServer,
    postgres_url: str,
    redis_url: str,
    unused_tcp_port_url: str,
) -> None:
    # A password in the PostgreSQL URL (trust auth ignores it) must never be shown.
    postgres = postgres_url.replace("postgres@", "postgres:hunter2-secret@")
    config = write_config(tmp_path, service.url, postgres, redis_url, unused_tcp_port_url)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "opsbook", "serve", "-c", str(config), "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # Healthy: api up with its datastores; legacy down (nothing listens on its port).
        status = wait_until(
            lambda: (
                (s := status_of(base))["legacy"]["state"] == "down"
                and all(p["state"] == "up" for p in s["api"]["probes"])
                and s["api"]["uptime"]["24h"] is not None  # the verdict is written within 1 s
                and s
            ),
            process,
        )
        api = status["api"]
        assert api["owner"] == "alice@example.com" and api["tier"] == "1" and api["public"]
        assert api["links"] == {"runbook": "https://wiki.example.com/runbooks/api"}
        assert api["dependencies"] == ["db", "cache", "legacy"]
        assert {p["name"]: p["state"] for p in api["probes"]} == {
            "health": "up",
            "db": "up",
            "cache": "up",
        }
        assert api["uptime"]["24h"] == 1.0 and api["failing"] == []
        legacy = status["legacy"]["failing"][0]
        assert legacy["probe"] == "port" and "refused" in legacy["error"]

        # The CLI reads the database while the server runs; exit 2 because legacy is down.
        cli = runner.invoke(app, ["status", "-c", str(config), "--json"])
        assert cli.exit_code == 2, cli.output
        reported = {s["service"]: s for s in json.loads(cli.stdout)["services"]}
        assert reported["api"]["state"] == "up" and reported["legacy"]["state"] == "down"
        only_api = runner.invoke(app, ["status", "-c", str(config), "--service", "api"])
        assert only_api.exit_code == 0, only_api.output
        assert "api" in only_api.stdout and "legacy" not in only_api.stdout

        # Blackbox names with service/probe labels, in the store, through the query API.
        success = query(base, 'probe_success{service="api"}')
        assert {r["metric"]["probe"]: r["value"][1] for r in success} == {
            "health": "1",
            "db": "1",
            "cache": "1",
        }
        assert query(base, 'probe_http_status_code{service="api"}')[0]["value"][1] == "200"
        assert query(base, 'probe_success{service="legacy"}')[0]["value"][1] == "0"
        database = query(base, 'opsbook_health_check_status{service="api",component="database"}')
        assert database[0]["value"][1] == "1"

        # Failing: after two failed attempts (failure_threshold 2) the service is down.
        service.mode = "failing"
        api = wait_until(lambda: (a := status_of(base)["api"])["state"] == "down" and a, process)
        failing = api["failing"][0]
        assert failing["probe"] == "health"
        assert "[STATUS] == 200 failed (503)" in failing["error"]
        assert failing["components"][0]["component"] == "database"
        assert failing["components"][0]["output"] == "connection pool exhausted"
        assert wait_until(
            lambda: (
                query(base, 'opsbook_health_check_status{component="database"}')[0]["value"][1]
                == "0"
            ),
            process,
        )
        text = runner.invoke(app, ["status", "-c", str(config)])
        assert text.exit_code == 2
        assert "✗ down" in text.stdout and "connection pool exhausted" in text.stdout

        # Slow (past the timeout) and garbage keep it down, with the reason; the prober lives on.
        service.mode = "slow"
        api = wait_until(
            lambda: (
                "timed out" in ((a := status_of(base)["api"])["failing"][0]["error"] or "") and a
            ),
            process,
        )
        service.mode = "garbage"
        wait_until(
            lambda: (
                "did not answer with HTTP" in (status_of(base)["api"]["failing"][0]["error"] or "")
            ),
            process,
        )
        # Healthy again: up after one success (success_threshold 1), with a partial uptime.
        service.mode = "healthy"
        api = wait_until(lambda: (a := status_of(base)["api"])["state"] == "up" and a, process)
        assert 0 < api["uptime"]["24h"] < 1

        via_url = runner.invoke(app, ["status", "--url", base, "--json"])
        assert via_url.exit_code == 2, via_url.output
        assert {s["service"] for s in json.loads(via_url.stdout)["services"]} == {"api", "legacy"}
        probes = httpx.get(f"{base}/api/v1/probes", timeout=5).json()["data"]
        assert {(p["service"], p["name"]) for p in probes} == {
            ("api", "health"),
            ("api", "db"),
            ("api", "cache"),
            ("legacy", "port"),
        }
        assert "hunter2" not in json.dumps(probes) and "hunter2" not in cli.stdout
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    log = output.decode()
    assert process.returncode in (0, -signal.SIGTERM), log
    assert "prober stopped" in log
    assert "hunter2" not in log
