"""Shared fixtures: the real PostgreSQL and Redis of the machine.

On a laptop without them the tests that need them skip with a loud reason; under CI=true they fail,
because CI machines have both and a silent skip would hide a broken feature.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

POSTGRES_URL = os.environ.get(
    "OPSBOOK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("OPSBOOK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 1.0):
            return True
    except OSError:
        return False


def require_service(name: str, url: str) -> None:
    """Skip (laptop) or fail (CI) when a service the test needs is not listening."""
    if _reachable(url):
        return
    host = urlsplit(url).netloc.rsplit("@", 1)[-1]
    message = f"{name} is not reachable at {host}"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it (the CI machine runs {name})")
    pytest.skip(f"!!! SKIPPED: {message}. Start {name} to run this test.")


def require_tool(name: str, package: str) -> str:
    """The path of a command-line tool the test drives; skip (laptop) or fail (CI) without it."""
    import shutil

    path = shutil.which(name)
    if path is not None:
        return path
    message = f"{name} is not installed (Debian package {package!r}; `make test` installs it)"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it")
    pytest.skip(f"!!! SKIPPED: {message}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def postgres_url() -> str:
    require_service("PostgreSQL", POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A URL whose connections live in a fresh schema, dropped afterwards."""
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", REDIS_URL)
    return REDIS_URL


@pytest.fixture
def unused_tcp_port_url() -> str:
    """A loopback address where nothing listens: connections are refused at once."""
    return f"127.0.0.1:{free_port()}"
