"""`make demo` serves the example app: start it the same way and use it like a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_serves_the_instrumented_example(tmp_path: Path) -> None:
    port = free_port()
    log_file = tmp_path / "demo.jsonl"
    env = {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'inventory.db'}",
        "LOG_FILE": str(log_file),
        "SLOW_QUERY_MS": "0",
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.instrumented_app"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(8)]
        assert f"{base}/health/detailed" in "".join(banner)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the demo did not come up within 30 s"
            time.sleep(0.1)
        with httpx.Client(base_url=base) as client:
            created = client.post("/items", json={"name": "sprocket", "quantity": 2})
            assert created.status_code == 201
            item_id = created.json()["id"]
            assert (
                client.get(f"/items/{item_id}", headers={"X-User-ID": "u-1"}).json()["name"]
                == "sprocket"
            )
            assert client.get("/items/999999").status_code == 404
            health = client.get("/health/detailed")
            assert health.status_code == 200, health.text
            checks = health.json()["checks"]
            assert {"database:responseTime", "disk:utilization", "restock:lastSuccess"} <= set(
                checks
            )
            assert checks["restock:lastSuccess"][0]["status"] == "pass"
            metrics = client.get("/metrics").text
        assert 'http_requests_total{method="POST",route="/items",status="201"} 1.0' in metrics
        assert (
            'http_requests_total{method="GET",route="/items/{item_id}",status="404"} 1.0' in metrics
        )
        assert "db_query_duration_seconds_bucket" in metrics
    finally:
        process.terminate()
        process.wait(timeout=15)
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    access = [e for e in lines if e["logger"] == "opsbook.access"]
    assert any(e["user_id"] == "u-1" and e["route"] == "/items/{item_id}" for e in access)
    slow_sql = [e for e in lines if e["logger"] == "opsbook.sql"]
    assert slow_sql and all("sprocket" not in e["statement"] for e in slow_sql)
