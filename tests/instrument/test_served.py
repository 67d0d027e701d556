"""opsbook.instrument inside a real uvicorn server on loopback, one and two worker processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def uvicorn_server(env: dict[str, str], workers: int = 1) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "tests.instrument.served_app:app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"uvicorn exited early with {process.returncode}:\n{output}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("uvicorn did not answer /health within 30 s")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def counter_total(metrics_text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


@pytest.mark.postgres
@pytest.mark.redis
def test_real_server_health_metrics_ids_and_logs(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    log_path = tmp_path / "served.jsonl"
    env = {
        "SERVED_DATABASE_URL": postgres_url,
        "SERVED_REDIS_URL": redis_url,
        "SERVED_LOG_FILE": str(log_path),
    }
    with uvicorn_server(env) as base, httpx.Client(base_url=base) as client:
        assert client.get("/items/3").json() == {"item_id": 3}
        # uvicorn drops the connection after an unhandled exception: use a fresh one.
        crashed = httpx.get(f"{base}/boom", headers={"X-Request-ID": "served-500"})
        assert crashed.status_code == 500
        assert crashed.headers["x-request-id"] == "served-500"
        health = client.get("/health/detailed")
        assert health.status_code == 200, health.text
        assert health.headers["content-type"] == "application/health+json"
        body = health.json()
        assert body["checks"]["database:responseTime"][0]["status"] == "pass"
        assert body["checks"]["redis:responseTime"][0]["status"] == "pass"
        metrics = client.get("/metrics").text
    assert (
        counter_total(metrics, "http_requests_total", route="/items/{item_id}", status="200") == 1
    )
    assert counter_total(metrics, "http_requests_total", route="/boom", status="500") == 1
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    access = [e for e in lines if e.get("logger") == "opsbook.access"]
    assert [e["route"] for e in access] == ["/items/{item_id}", "/boom"]
    assert access[1]["request_id"] == "served-500"
    # uvicorn's own records (startup, the traceback of the 500) come out as JSON too.
    server_messages = [e for e in lines if e["logger"].startswith("uvicorn")]
    assert any("Application startup complete" in e["message"] for e in server_messages)
    assert all("color_message" not in e for e in server_messages)
    traceback = next(e for e in server_messages if "RuntimeError" in e.get("exception", ""))
    assert traceback["level"] == "ERROR"


def test_unreachable_database_makes_the_real_server_report_503(
    tmp_path: Path, unused_tcp_port_url: str
) -> None:
    env = {
        "SERVED_DATABASE_URL": f"postgresql+psycopg://app:pw@{unused_tcp_port_url}/db",
        "SERVED_LOG_FILE": str(tmp_path / "served.jsonl"),
    }
    with uvicorn_server(env) as base:
        response = httpx.get(f"{base}/health/detailed", timeout=10)
        component = httpx.get(f"{base}/health/database", timeout=10)
    assert response.status_code == 503
    assert response.json()["output"] == "fail: database"
    assert component.status_code == 503


def test_two_workers_metrics_add_up(tmp_path: Path) -> None:
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "SERVED_LOG_FILE": str(tmp_path / "served.jsonl"),
    }
    with uvicorn_server(env, workers=2) as base:
        pids: set[int] = set()
        sent = 0
        # A new connection per request lets the kernel spread them over both workers; stop
        # once both have answered (bounded).
        while sent < 400 and (len(pids) < 2 or sent < 40):
            response = httpx.get(f"{base}/pid", headers={"Connection": "close"})
            pids.add(response.json()["pid"])
            sent += 1
        assert len(pids) == 2, f"only one worker answered {sent} requests"
        scrapes = [
            httpx.get(f"{base}/metrics", headers={"Connection": "close"}).text for _ in range(6)
        ]
    for text in scrapes:
        # Whichever worker answers the scrape, it reports the requests of both.
        assert counter_total(text, "http_requests_total", route="/pid", status="200") == sent
        assert counter_total(text, "http_request_duration_seconds_count", route="/pid") == sent
        assert counter_total(text, "http_requests_in_progress") == 0
