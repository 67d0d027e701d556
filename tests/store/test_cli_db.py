"""`opsbook db upgrade` and `opsbook db current`, run as the real command in a subprocess."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from opsbook.store import create_store_engine, mask_database_url
from tests.store.conftest import RunCli

pytestmark = pytest.mark.slow

HEAD = "0002_probes"
PASSWORD = "Pw-do-not-print-7f3a"


def _tables(url: str) -> set[str]:
    engine = create_store_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _version_rows(url: str) -> list[str]:
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("select version_num from alembic_version")).scalars())
    finally:
        engine.dispose()


def test_upgrade_creates_the_schema(run_cli: RunCli, database_url: str) -> None:
    result = run_cli("db", "upgrade", "--database-url", database_url)
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip() == f"upgraded {mask_database_url(database_url)} from <none> to {HEAD}"
    )
    assert {"services", "alembic_version"} <= _tables(database_url)

    current = run_cli("db", "current", "--database-url", database_url, "--json")
    assert current.returncode == 0, current.stderr
    report = json.loads(current.stdout)
    assert report["current"] == report["head"] == HEAD
    assert report["up_to_date"] is True


def test_upgrading_twice_is_a_no_op(run_cli: RunCli, database_url: str) -> None:
    assert run_cli("db", "upgrade", "--database-url", database_url).returncode == 0
    again = run_cli("db", "upgrade", "--database-url", database_url, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {
        "database_url": mask_database_url(database_url),
        "from_revision": HEAD,
        "to_revision": HEAD,
        "changed": False,
    }
    assert _version_rows(database_url) == [HEAD]
    text_again = run_cli("db", "upgrade", "--database-url", database_url)
    assert f"already at {HEAD}" in text_again.stdout


def test_current_before_upgrade(run_cli: RunCli, database_url: str) -> None:
    result = run_cli("db", "current", "--database-url", database_url, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["current"], report["head"], report["up_to_date"]) == (None, HEAD, False)
    text_report = run_cli("db", "current", "--database-url", database_url).stdout
    assert "is at <none>" in text_report
    assert "opsbook db upgrade" in text_report


def test_sqlite_file_is_in_wal_mode(run_cli: RunCli, tmp_path: Path) -> None:
    db = tmp_path / "wal.db"
    assert run_cli("db", "upgrade", "--database-url", f"sqlite:///{db}").returncode == 0
    # A plain sqlite3 connection: WAL is a property of the file, it persists.
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_default_url_is_under_the_current_directory(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"upgraded sqlite:///.opsbook/opsbook.db from <none> to {HEAD}"
    assert (tmp_path / ".opsbook" / "opsbook.db").is_file()
    current = run_cli("db", "current", "--json", cwd=tmp_path)
    assert json.loads(current.stdout)["current"] == HEAD


def test_environment_variable_is_honoured(run_cli: RunCli, tmp_path: Path) -> None:
    env_db = tmp_path / "from-env.db"
    env = {"OPSBOOK_DATABASE_URL": f"sqlite:///{env_db}"}
    result = run_cli("db", "upgrade", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert env_db.is_file()
    assert not (tmp_path / ".opsbook").exists()


def test_explicit_url_beats_the_environment(run_cli: RunCli, tmp_path: Path) -> None:
    explicit = tmp_path / "explicit.db"
    env = {"OPSBOOK_DATABASE_URL": f"sqlite:///{tmp_path / 'env.db'}"}
    result = run_cli("db", "upgrade", "--database-url", f"sqlite:///{explicit}", env=env)
    assert result.returncode == 0, result.stderr
    assert explicit.is_file()
    assert not (tmp_path / "env.db").exists()


def _assert_one_line_error(stdout: str, stderr: str) -> str:
    assert PASSWORD not in stdout
    assert PASSWORD not in stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_unreachable_postgres_is_a_one_line_error(
    run_cli: RunCli, unused_tcp_port_url: str
) -> None:
    url = f"postgresql://app:{PASSWORD}@{unused_tcp_port_url}/opsbook"
    for command in ("upgrade", "current"):
        result = run_cli("db", command, "--database-url", url)
        assert result.returncode == 1
        line = _assert_one_line_error(result.stdout, result.stderr)
        assert f"postgresql+psycopg://app:***@{unused_tcp_port_url}/opsbook" in line
        assert "cannot connect" in line
        assert "server is running" in line


def test_malformed_url_is_a_one_line_error(run_cli: RunCli) -> None:
    result = run_cli("db", "upgrade", "--database-url", f"postgresql://app:{PASSWORD}@h:port/db")
    assert result.returncode == 1
    line = _assert_one_line_error(result.stdout, result.stderr)
    assert "postgresql+psycopg://app:***@h:port/db is not a database URL" in line


def test_database_from_a_newer_opsbook_is_refused(run_cli: RunCli, database_url: str) -> None:
    assert run_cli("db", "upgrade", "--database-url", database_url).returncode == 0
    engine = create_store_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("update alembic_version set version_num = '9999_future'"))
    finally:
        engine.dispose()
    result = run_cli("db", "upgrade", "--database-url", database_url)
    assert result.returncode == 1
    line = _assert_one_line_error(result.stdout, result.stderr)
    assert "'9999_future'" in line
    assert "upgrade opsbook" in line
    current = json.loads(run_cli("db", "current", "--database-url", database_url, "--json").stdout)
    assert (current["current"], current["known"], current["up_to_date"]) == (
        "9999_future",
        False,
        False,
    )


def test_storage_section_of_opsbook_yaml_is_used(run_cli: RunCli, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "opsbook.yaml").write_text("storage:\n  data_dir: state\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Run from another directory: data_dir is relative to the config file, not the cwd.
    result = run_cli(
        "db", "upgrade", "--config", str(project / "opsbook.yaml"), "--json", cwd=elsewhere
    )
    assert result.returncode == 0, result.stderr
    assert (project / "state" / "opsbook.db").exists()
    assert not (elsewhere / ".opsbook").exists()

    target = tmp_path / "configured.db"
    (project / "opsbook.yaml").write_text(f"storage:\n  database_url: sqlite:///{target}\n")
    # ./opsbook.yaml is found without --config.
    assert run_cli("db", "upgrade", cwd=project).returncode == 0
    assert "services" in _tables(f"sqlite:///{target}")


def test_environment_and_flag_win_over_the_config_file(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "opsbook.yaml").write_text(
        f"storage:\n  database_url: sqlite:///{tmp_path / 'from-config.db'}\n"
    )
    from_env = tmp_path / "from-env.db"
    result = run_cli(
        "db", "upgrade", cwd=tmp_path, env={"OPSBOOK_DATABASE_URL": f"sqlite:///{from_env}"}
    )
    assert result.returncode == 0, result.stderr
    from_flag = tmp_path / "from-flag.db"
    assert (
        run_cli(
            "db", "upgrade", "--database-url", f"sqlite:///{from_flag}", cwd=tmp_path
        ).returncode
        == 0
    )
    assert from_env.exists() and from_flag.exists()
    assert not (tmp_path / "from-config.db").exists()


def test_invalid_config_file_stops_with_its_errors(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "opsbook.yaml").write_text("storage:\n  data_dri: x\n")
    result = run_cli("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 1
    assert (
        "opsbook.yaml:2:3: storage.data_dri: unknown key (did you mean 'data_dir'?)"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
    missing = run_cli("db", "current", "--config", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert missing.returncode == 1
    assert "file not found" in missing.stderr
