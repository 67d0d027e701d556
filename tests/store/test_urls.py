"""URL choice, normalisation and masking: pure functions."""

from __future__ import annotations

import pytest

from opsbook.store import (
    DEFAULT_DATABASE_URL,
    DatabaseUrlError,
    choose_database_url,
    engine_options,
    mask_database_url,
    normalize_database_url,
    parse_database_url,
    redact,
    resolve_database_url,
)
from opsbook.store.urls import sqlite_file_path

SECRET = "Zq9-unlikely-pw"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        (
            "postgres://u:p@h:5433/db?sslmode=require",
            "postgresql+psycopg://u:p@h:5433/db?sslmode=require",
        ),
        ("POSTGRES://h/db", "postgresql+psycopg://h/db"),
        ("postgresql+psycopg://h/db", "postgresql+psycopg://h/db"),
        ("postgresql+psycopg2://h/db", "postgresql+psycopg2://h/db"),  # an explicit driver stays
        ("  sqlite:///x.db\n", "sqlite:///x.db"),
    ],
)
def test_normalize(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


def test_choice_order() -> None:
    assert choose_database_url("sqlite:///a.db", "sqlite:///b.db") == "sqlite:///a.db"
    assert choose_database_url(None, "postgres://h/db") == "postgresql+psycopg://h/db"
    assert choose_database_url("  ", "sqlite:///b.db") == "sqlite:///b.db"
    assert choose_database_url(None, "") == DEFAULT_DATABASE_URL
    assert choose_database_url(None, None) == "sqlite:///.opsbook/opsbook.db"


def test_resolve_reads_the_environment() -> None:
    env = {"OPSBOOK_DATABASE_URL": "postgresql://h/env"}
    assert resolve_database_url(None, env) == "postgresql+psycopg://h/env"
    assert resolve_database_url("sqlite:///x.db", env) == "sqlite:///x.db"
    assert resolve_database_url(None, {}) == DEFAULT_DATABASE_URL


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql+psycopg://app:hunter2@host/db", "postgresql+psycopg://app:***@host/db"),
        ("postgresql://app:p%40ss@host:5432/db", "postgresql://app:***@host:5432/db"),
        ("postgresql://app:a@b/c@host/db", "postgresql://app:***@host/db"),  # unencoded @ and /
        (
            "postgresql://app@host/db?sslmode=require&password=x1",
            "postgresql://app@host/db?sslmode=require&password=***",
        ),
        ("postgresql://app@host/db", "postgresql://app@host/db"),
        ("postgresql://host:5432/db", "postgresql://host:5432/db"),
        ("sqlite:///.opsbook/opsbook.db", "sqlite:///.opsbook/opsbook.db"),
    ],
)
def test_mask(given: str, expected: str) -> None:
    assert mask_database_url(given) == expected


def test_redact_removes_raw_and_decoded_password() -> None:
    url = "postgresql://app:p%40ss@host/db"
    assert redact("auth failed for p%40ss and p@ss", url) == "auth failed for *** and ***"
    assert redact("nothing secret", "sqlite:///x.db") == "nothing secret"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///.opsbook/opsbook.db", ".opsbook/opsbook.db"),
        ("sqlite:////var/lib/ops.db", "/var/lib/ops.db"),
        ("sqlite+pysqlite:///x.db?timeout=3", "x.db"),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("postgresql://h/db", None),
    ],
)
def test_sqlite_file_path(url: str, path: str | None) -> None:
    found = sqlite_file_path(url)
    assert (str(found) if found else None) == path


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        (f"postgresql://app:{SECRET}@host:notaport/db", "is not a database URL"),
        (f"mysql://app:{SECRET}@host/db", "supports sqlite:// and postgresql://"),
        (f"postgresql://app:{SECRET}@x@host/db", "percent-encode"),
    ],
)
def test_bad_urls_are_user_errors_without_the_password(url: str, hint: str) -> None:
    with pytest.raises(DatabaseUrlError) as caught:
        parse_database_url(url)
    message = str(caught.value)
    assert hint in message
    assert SECRET not in message
    assert "***" in message


def test_engine_options() -> None:
    postgres = engine_options(parse_database_url("postgresql://h/db"))
    assert postgres == {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    # A timeout in the URL wins; connect_args would silently override it.
    assert engine_options(parse_database_url("postgresql://h/db?connect_timeout=3")) == {
        "pool_pre_ping": True
    }
    assert engine_options(parse_database_url("sqlite:///x.db")) == {}
