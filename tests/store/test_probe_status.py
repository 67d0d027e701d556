"""The prober's states in the database, and ``opsbook status`` reading them — on SQLite and on
PostgreSQL, with scripted attempts on a controllable clock so every number is exact."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from opsbook.cli.main import app
from opsbook.config import OpsbookConfig, load_config
from opsbook.probes.flows import DatabaseStateStore
from opsbook.probes.prober import Prober
from opsbook.probes.results import CheckResult, ComponentCheck
from opsbook.probes.service import service_state_history
from opsbook.probes.specs import Check, probe_specs
from opsbook.probes.status import read_status, report_json

runner = CliRunner()
T0 = 1_750_000_000.0

OK = CheckResult(success=True, duration_s=0.01, status_code=200, health_status="pass")
FAIL = CheckResult(
    success=False,
    duration_s=0.02,
    error="[STATUS] == 200 failed (503)",
    status_code=503,
    health_status="fail",
    components=(ComponentCheck("database", "responseTime", "fail", 5000, "ms", "pool exhausted"),),
)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def write_config(directory: Path, database_url: str) -> Path:
    path = directory / "opsbook.yaml"
    path.write_text(
        f"""
storage:
  database_url: "{database_url}"
services:
  - name: api
    url: http://api.test
    health:
      url: /health
      interval: 10s
      failure_threshold: 3
  - name: worker
    probes:
      - name: queue
        type: tcp
        address: queue.test:5672
        interval: 10s
"""
    )
    return path


async def run_script(
    config: OpsbookConfig, sessions: sessionmaker[Session], clock: Clock, script: str
) -> None:
    """One attempt per character every 10 s on api (``+`` ok, ``-`` failing); worker is up."""
    outcomes = iter(script)

    async def check(check: Check, timeout_s: float) -> CheckResult:
        if check.kind == "tcp":
            return OK
        return OK if next(outcomes) == "+" else FAIL

    prober = Prober(
        probe_specs(config), states=DatabaseStateStore(sessions), clock=clock, check=check
    )
    await prober.start()
    for _ in script:
        await prober.probe_once("api", "health")
        await prober.probe_once("worker", "queue")
        clock.now += 10.0
    await prober.flush()
    # Not stopped: as if the server were still running (stop() would end the verdicts).


async def test_status_since_and_uptime_are_exact(
    tmp_path: Path, database_url: str, session_factory: sessionmaker[Session]
) -> None:
    config = load_config(write_config(tmp_path, database_url))
    clock = Clock()
    # Up at T0; failures from T0+40 (down at the third, dated from the first); up at the next
    # success (success_threshold 1); two failures later are below the threshold.
    await run_script(config, session_factory, clock, "++++---+--++")
    now = T0 + 120.0
    with session_factory() as session:
        api, worker = read_status(session, config, now)
        history = service_state_history(session, "api", T0 - 1, now)
    assert [(c.state, c.at) for c in history] == [
        ("up", T0),
        ("down", T0 + 40),
        ("up", T0 + 70),
    ]
    assert api.state == "up" and api.since == T0 + 70
    # 30 s down out of 120 s watched; the rest of the 24 h nobody watched (unknown).
    assert api.uptime["24h"] == pytest.approx(90 / 120)
    assert worker.state == "up" and worker.uptime["30d"] == 1.0
    assert api.failing_probes == []


async def test_a_down_service_reports_its_failing_components(
    tmp_path: Path, database_url: str, session_factory: sessionmaker[Session]
) -> None:
    path = write_config(tmp_path, database_url)
    config = load_config(path)
    clock = Clock()
    await run_script(config, session_factory, clock, "++----")
    with session_factory() as session:
        (api,) = read_status(session, config, T0 + 60, ["api"])
    assert api.state == "down" and api.since == T0 + 20
    document = report_json(api)
    assert document["failing"] == [
        {
            "probe": "health",
            "error": "[STATUS] == 200 failed (503)",
            "components": [
                {
                    "component": "database",
                    "measurement": "responseTime",
                    "status": "fail",
                    "observed_value": 5000,
                    "observed_unit": "ms",
                    "output": "pool exhausted",
                }
            ],
        }
    ]
    # Much later, with nobody probing, the old verdict no longer stands.
    with session_factory() as session:
        (stale,) = read_status(session, config, T0 + 3600, ["api"])
    assert stale.state == "unknown" and stale.probes[0].stale and stale.failing_probes == []


async def test_the_cli_prints_the_table_and_exits_2_when_a_service_is_down(
    tmp_path: Path, database_url: str, session_factory: sessionmaker[Session]
) -> None:
    path = write_config(tmp_path, database_url)
    config = load_config(path)
    clock = Clock()
    clock.now = time.time() - 60  # recent, so the CLI's "now" finds it fresh
    await run_script(config, session_factory, clock, "++----")

    text = runner.invoke(app, ["status", "-c", str(path)])
    assert text.exit_code == 2, text.output
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["SERVICE", "STATE", "SINCE", "UPTIME", "24H", "UPTIME", "30D"]
    assert lines[1].startswith("api") and "✗ down" in lines[1]
    assert "health (http http://api.test/health): [STATUS] == 200 failed (503)" in text.stdout
    assert "fail: database:responseTime 5000 ms — pool exhausted" in text.stdout
    assert any(line.startswith("worker") and "✓ up" in line for line in lines)

    as_json = runner.invoke(app, ["status", "-c", str(path), "--json", "-s", "worker"])
    assert as_json.exit_code == 0, as_json.output
    (worker,) = json.loads(as_json.stdout)["services"]
    assert worker["service"] == "worker" and worker["uptime"]["24h"] == 1.0

    unknown = runner.invoke(app, ["status", "-c", str(path), "-s", "nope"])
    assert unknown.exit_code == 1 and "no service named 'nope'" in unknown.stderr


def test_the_cli_explains_a_database_without_tables(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}")
    result = runner.invoke(app, ["status", "-c", str(path)])
    assert result.exit_code == 1
    assert "opsbook serve" in result.stderr and "db upgrade" in result.stderr
