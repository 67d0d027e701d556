"""``opsbook config check`` as a real subprocess: exit codes, stdout/stderr, --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "opsbook.yaml"
SECRET = "s3cr3t-XYZZY-4242"
EXAMPLE_ENV = {
    "SLACK_WEBHOOK_URL": f"https://hooks.slack.com/services/{SECRET}",
    "PAGERDUTY_ROUTING_KEY": SECRET,
    "SMTP_PASSWORD": SECRET,
    "STATUS_WEBHOOK_URL": f"https://status.example.com/{SECRET}",
}

INVALID = """\
services:
  - name: api
    helth: {url: /health}
slos:
  - name: availability
    service: api
    objective: 999
    sli: {events: {error_query: e, total_query: t}}
notify:
  channels:
    - {type: slack, name: ops, webhook_url: "${SLACK_WEBHOOK_URL}"}
    - {type: email, name: mail, to: [a@b], from_address: a@b, smtp: {host: h, port: "${PORT}"}}
"""
INVALID_LINES = [
    "opsbook.yaml:3:5: services[0].helth: unknown key (did you mean 'health'?)",
    "opsbook.yaml:7:16: slos[0].objective: must be between 0 and 100 (got 999)",
    "opsbook.yaml:11:45: notify.channels[0].webhook_url: must be an http(s) URL"
    " (value from ${SLACK_WEBHOOK_URL})",
    "opsbook.yaml:12:85: notify.channels[1].smtp.port: must be an integer (value from ${PORT})",
]


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "OPSBOOK_CONFIG"}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "opsbook", "config", "check", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_valid_file(tmp_path: Path) -> None:
    result = run(str(EXAMPLE), cwd=tmp_path, env=EXAMPLE_ENV)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (f"{EXAMPLE}: OK — 2 services, 1 SLO, 4 notification channels\n")


def test_valid_file_json(tmp_path: Path) -> None:
    result = run(str(EXAMPLE), "--json", cwd=tmp_path, env=EXAMPLE_ENV)
    assert result.returncode == 0
    assert json.loads(result.stdout) == {
        "file": str(EXAMPLE),
        "valid": True,
        "errors": [],
        "summary": {"project": "rentwise", "services": 2, "slos": 1, "channels": 4},
    }
    assert SECRET not in result.stdout


def test_default_file_is_opsbook_yaml_in_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "opsbook.yaml").write_text("services: [{name: api}]\n", encoding="utf-8")
    result = run(cwd=tmp_path)
    assert (result.returncode, result.stdout) == (
        0,
        "opsbook.yaml: OK — 1 service, 0 SLOs, 0 notification channels\n",
    )


def test_default_file_from_opsbook_config(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text("project: x\n", encoding="utf-8")
    (tmp_path / "opsbook.yaml").write_text("not: [valid\n", encoding="utf-8")
    result = run(cwd=tmp_path, env={"OPSBOOK_CONFIG": "other.yaml"})
    assert (result.returncode, result.stdout) == (
        0,
        "other.yaml: OK — 0 services, 0 SLOs, 0 notification channels\n",
    )


def test_invalid_file_lists_every_error_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "opsbook.yaml").write_text(INVALID, encoding="utf-8")
    result = run("opsbook.yaml", cwd=tmp_path, env={"SLACK_WEBHOOK_URL": SECRET, "PORT": SECRET})
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == INVALID_LINES
    assert SECRET not in result.stderr


def test_invalid_file_json(tmp_path: Path) -> None:
    (tmp_path / "opsbook.yaml").write_text(INVALID, encoding="utf-8")
    result = run(
        "--json", "opsbook.yaml", cwd=tmp_path, env={"SLACK_WEBHOOK_URL": SECRET, "PORT": SECRET}
    )
    assert (result.returncode, result.stderr) == (1, "")
    assert SECRET not in result.stdout
    report = json.loads(result.stdout)
    assert (report["file"], report["valid"], report["summary"]) == ("opsbook.yaml", False, None)
    assert report["errors"][1] == {
        "file": "opsbook.yaml",
        "line": 7,
        "column": 16,
        "path": "slos[0].objective",
        "message": "must be between 0 and 100 (got 999)",
    }
    assert [
        f"{e['file']}:{e['line']}:{e['column']}: {e['path']}: {e['message']}"
        for e in report["errors"]
    ] == INVALID_LINES


def test_missing_variable(tmp_path: Path) -> None:
    (tmp_path / "opsbook.yaml").write_text(INVALID, encoding="utf-8")
    result = run(cwd=tmp_path, env={"PORT": "25"})
    assert result.returncode == 1
    assert (
        "opsbook.yaml:11:45: notify.channels[0].webhook_url: environment variable"
        " SLACK_WEBHOOK_URL is not set"
    ) in result.stderr.splitlines()


def test_missing_file(tmp_path: Path) -> None:
    result = run("nope.yaml", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        "nope.yaml: file not found\n",
    )


def test_missing_file_json(tmp_path: Path) -> None:
    result = run("--json", cwd=tmp_path)
    assert result.returncode == 1
    assert json.loads(result.stdout) == {
        "file": "opsbook.yaml",
        "valid": False,
        "errors": [
            {
                "file": "opsbook.yaml",
                "line": None,
                "column": None,
                "path": "",
                "message": "file not found",
            }
        ],
        "summary": None,
    }


def test_yaml_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "opsbook.yaml").write_text("services:\n  - name: [api\n", encoding="utf-8")
    result = run(cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("opsbook.yaml:3:1: YAML syntax error: ")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1
