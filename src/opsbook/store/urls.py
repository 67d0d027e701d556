"""Database URLs: choosing, normalising and masking them. Pure functions, no I/O."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

ENV_VAR = "OPSBOOK_DATABASE_URL"
DEFAULT_SQLITE_PATH = ".opsbook/opsbook.db"
DEFAULT_DATABASE_URL = f"sqlite:///{DEFAULT_SQLITE_PATH}"
MASK = "***"

# psycopg 3 is the installed PostgreSQL driver; SQLAlchemy maps bare `postgresql://` to psycopg2.
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_POSTGRES_DRIVER_SCHEME = "postgresql+psycopg://"

# `scheme://user:password@` — the password runs to the *last* `@`, because passwords pasted into
# URLs are often not percent-encoded. Masking too much is harmless; masking too little leaks.
_USERINFO_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][\w+.\-]*://[^:/@?#]*):(?P<secret>.*)@", re.S)
# libpq and psycopg also accept the password as a query parameter.
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:ssl)?password=)(?P<secret>[^&#]*)", re.I)


def normalize_database_url(url: str) -> str:
    """Trim the URL and point plain PostgreSQL URLs at the psycopg 3 driver."""
    url = url.strip()
    lowered = url.lower()
    for scheme in _POSTGRES_SCHEMES:
        if lowered.startswith(scheme):
            return _POSTGRES_DRIVER_SCHEME + url[len(scheme) :]
    return url


def choose_database_url(
    explicit: str | None,
    env_value: str | None,
    configured: str | None = None,
    data_dir: Path | None = None,
) -> str:
    """Explicit URL, else the environment's, else opsbook.yaml's `storage.database_url`, else a
    SQLite file in `data_dir` (default `.opsbook/`). Empty means unset."""
    for candidate in (explicit, env_value, configured):
        if candidate is not None and candidate.strip():
            return normalize_database_url(candidate)
    if data_dir is not None:
        return f"sqlite:///{data_dir / Path(DEFAULT_SQLITE_PATH).name}"
    return DEFAULT_DATABASE_URL


def mask_database_url(url: str) -> str:
    """The URL with any password replaced by `***`, safe for output and logs."""
    masked = _USERINFO_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", url, count=1)
    return _QUERY_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", masked)


def url_secrets(url: str) -> list[str]:
    """The passwords written in the URL, raw and percent-decoded, longest first."""
    found: list[str] = []
    for pattern in (_USERINFO_PASSWORD, _QUERY_PASSWORD):
        for match in pattern.finditer(url):
            secret = match["secret"]
            found.extend(s for s in {secret, unquote(secret)} if s)
    return sorted(set(found), key=len, reverse=True)


def redact(text: str, url: str) -> str:
    """`text` (a driver's error message, say) with the URL's passwords replaced by `***`."""
    for secret in url_secrets(url):
        text = text.replace(secret, MASK)
    return text


def sqlite_file_path(url: str) -> Path | None:
    """The file a SQLite URL points at, or None for in-memory and URI-style databases."""
    if not url.lower().startswith("sqlite"):
        return None
    _, sep, rest = url.partition(":///")
    if not sep:
        return None  # `sqlite://` is an in-memory database
    database = rest.split("?", 1)[0]
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)
