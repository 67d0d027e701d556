"""``opsbook import``, ``opsbook query`` and ``opsbook serve`` through their real interfaces:
the CLI on a config in a temporary directory, and ``serve`` as its own process on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from opsbook.cli.main import app
from tests.conftest import free_port
from tests.metrics.scrape_server import metrics_endpoint

runner = CliRunner()
T0 = 1_700_000_000  # seconds


def write_config(directory: Path, extra: str = "") -> Path:
    config = directory / "opsbook.yaml"
    config.write_text(f"project: cli-test\nmetrics:\n  retention: 100000d\n{extra}")
    return config


def write_openmetrics(path: Path) -> None:
    lines = ["# TYPE http_requests counter"]
    for route, per_step in (("/a", 1), ("/b", 3)):
        for i in range(41):  # 10 minutes at 15 s
            lines.append(f'http_requests_total{{route="{route}"}} {i * per_step} {T0 + i * 15}')
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def imported(tmp_path: Path) -> Path:
    config = write_config(tmp_path)
    data = tmp_path / "history.om"
    write_openmetrics(data)
    result = runner.invoke(app, ["import", str(data), "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["samples"] == 82 and report["series"] == 2
    return config


def test_instant_query_prints_promtool_style_lines(imported: Path) -> None:
    at = str(T0 + 600)
    result = runner.invoke(
        app,
        [
            "query",
            "sum by (route) (rate(http_requests_total[5m]))",
            "--time",
            at,
            "-c",
            str(imported),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    parsed = [line.partition(" => ") for line in lines]
    assert [series for series, _, _ in parsed] == ['{route="/a"}', '{route="/b"}']
    values = [float(rest.split(" @[")[0]) for _, _, rest in parsed]
    assert values == [pytest.approx(1 / 15), pytest.approx(3 / 15)]
    assert all(line.endswith(f"@[{T0 + 600}]") for line in lines)


def test_range_query_as_json(imported: Path) -> None:
    result = runner.invoke(
        app,
        [
            "query",
            'http_requests_total{route="/b"}',
            "--range",
            str(T0 + 60),
            str(T0 + 180),
            "1m",
            "-c",
            str(imported),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["status"] == "success"
    assert document["data"]["resultType"] == "matrix"
    [series] = document["data"]["result"]
    assert series["metric"] == {"__name__": "http_requests_total", "route": "/b"}
    assert series["values"] == [[T0 + 60, "12"], [T0 + 120, "24"], [T0 + 180, "36"]]


def test_query_errors_exit_1_with_the_reason(imported: Path) -> None:
    result = runner.invoke(app, ["query", "sum(rate(x[5m])", "-c", str(imported)])
    assert result.exit_code == 1
    assert "parse error" in result.stderr and "1:" in result.stderr
    as_json = runner.invoke(app, ["query", "foo bar", "-c", str(imported), "--json"])
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["errorType"] == "bad_data"
    bad_time = runner.invoke(app, ["query", "up", "--time", "yesterday", "-c", str(imported)])
    assert bad_time.exit_code == 1 and "time" in bad_time.stderr


def _wait_for(url: str, process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise AssertionError(f"opsbook serve exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not come up in {timeout_s} s")


def test_serve_scrapes_answers_queries_and_flushes_on_sigterm(tmp_path: Path) -> None:
    body = 'jobs_total{queue="mail"} 7\njobs_total{queue="sms"} 3\n'
    with metrics_endpoint(body) as endpoint:
        config = write_config(
            tmp_path,
            "  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            f"  targets:\n    - job: worker\n      url: {endpoint.url}\n",
        )
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "opsbook",
                "serve",
                "-c",
                str(config),
                "--port",
                str(port),
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_for(f"{base}/-/healthy", process)
            deadline = time.monotonic() + 30
            while True:
                answer = httpx.get(f"{base}/api/v1/query", params={"query": "sum(jobs_total)"})
                result = answer.json()["data"]["result"]
                if result or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert result and result[0]["value"][1] == "10"
            up = httpx.get(f"{base}/api/v1/query", params={"query": 'up{job="worker"}'}).json()
            assert up["data"]["result"][0]["value"][1] == "1"
            targets = httpx.get(f"{base}/api/v1/targets").json()["data"]["activeTargets"]
            assert [t["health"] for t in targets] == ["up"]
            # While serving, the store is locked; the CLI says how to query the server instead.
            locked = runner.invoke(app, ["query", "up", "-c", str(config)])
            assert locked.exit_code == 1 and "--url" in locked.stderr
            via_url = runner.invoke(app, ["query", "sum(jobs_total)", "--url", base])
            assert via_url.exit_code == 0 and "=> 10 @[" in via_url.stdout
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=30)
        # uvicorn re-raises the signal after its graceful shutdown, for process managers to see.
        assert process.returncode in (0, -signal.SIGTERM), output.decode()
        log = output.decode()
        assert "metrics engine stopped" in log and "Application shutdown complete" in log
        assert endpoint.url not in log  # scrape URLs (which may hold credentials) stay out
    # After a clean stop the samples are on disk, ended by stale markers.
    after = runner.invoke(app, ["query", "count_over_time(jobs_total[10m])", "-c", str(config)])
    assert after.exit_code == 0, after.output
    assert after.stdout.count("=>") == 2
    gone = runner.invoke(app, ["query", "jobs_total", "-c", str(config)])
    assert gone.exit_code == 0 and gone.stdout.strip() == "(empty result)"
