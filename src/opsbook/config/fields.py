"""Reusable field types of the schema, each failing with its own error type.

The error types (``slug``, ``http_url``, ``secret_type`` ...) are what the loader's message mapper
keys on; the message templates here are what Python callers see when they validate directly.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr
from pydantic_core import PydanticCustomError

_SLUG_RE = re.compile(r"[a-z0-9][a-z0-9_-]*", re.ASCII)
# Deliberately loose: SMTP servers are the judge of addresses; this only catches obvious slips.
_EMAIL_RE = re.compile(r"[^@\s<>]+@[^@\s<>]+")
_NAMED_EMAIL_RE = re.compile(r"[^<>]*<([^@\s<>]+@[^@\s<>]+)>")


def is_http_url(value: str) -> bool:
    """True for an absolute ``http://`` or ``https://`` URL with a host."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.hostname) and " " not in value


def _slug(value: str) -> str:
    if not _SLUG_RE.fullmatch(value):
        raise PydanticCustomError(
            "slug",
            "must use only lowercase letters, digits, '-' and '_' (and not start with - or _)",
        )
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("empty", "must not be empty")
    return value


def _http_url(value: str) -> str:
    if not is_http_url(value):
        raise PydanticCustomError("http_url", "must be an http(s) URL like https://api.example.com")
    return value


def _url_or_path(value: str) -> str:
    if value.startswith("/") and not value.startswith("//"):
        return value
    if not is_http_url(value):
        raise PydanticCustomError(
            "url_or_path", "must be an http(s) URL or a path starting with '/', like /health"
        )
    return value


def _email(value: str) -> str:
    if not (_EMAIL_RE.fullmatch(value) or _NAMED_EMAIL_RE.fullmatch(value)):
        raise PydanticCustomError("email", "must be an e-mail address like ops@example.com")
    return value


def _secret_input(value: Any) -> Any:
    # Checked before SecretStr so the error type tells the mapper never to show the input.
    if isinstance(value, SecretStr):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("secret_type", "must be a string")
    if not value.strip():
        raise PydanticCustomError("secret_empty", "must not be empty")
    return value


def _secret_http_url(value: SecretStr) -> SecretStr:
    if not is_http_url(value.get_secret_value()):
        raise PydanticCustomError("secret_http_url", "must be an http(s) URL")
    return value


def _no_bool(value: Any) -> Any:
    # YAML reads `yes`/`on`/`true` as booleans, which pydantic would quietly take as 1.
    if isinstance(value, bool):
        raise PydanticCustomError("number_type", "must be a number")
    return value


def _objective(value: float) -> float:
    if not 0 < value < 100:
        raise PydanticCustomError(
            "between", "must be between {low} and {high}", {"low": 0, "high": 100}
        )
    return value


NonEmptyStr = Annotated[str, AfterValidator(_non_empty)]
Slug = Annotated[str, AfterValidator(_slug)]
"""A name used in references and URLs: lowercase letters, digits, ``-`` and ``_``."""
HttpUrl = Annotated[str, AfterValidator(_http_url)]
"""An absolute http(s) URL, kept exactly as written (pydantic's HttpUrl would normalise it)."""
UrlOrPath = Annotated[str, AfterValidator(_url_or_path)]
"""An absolute http(s) URL, or a path starting with ``/`` relative to the service's ``url``."""
EmailAddress = Annotated[str, AfterValidator(_email)]
"""``ops@example.com`` or ``Opsbook <ops@example.com>``."""
Secret = Annotated[SecretStr, BeforeValidator(_secret_input)]
"""A string that must never be printed: tokens, routing keys, passwords."""
SecretHttpUrl = Annotated[
    SecretStr, BeforeValidator(_secret_input), AfterValidator(_secret_http_url)
]
"""A URL that is itself a credential (Slack webhooks, signed webhook URLs)."""
Port = Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=65535)]
Threshold = Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=100)]
"""How many attempts in a row decide a probe's state."""
Objective = Annotated[float, BeforeValidator(_no_bool), AfterValidator(_objective)]
"""An SLO objective in percent, strictly between 0 and 100."""
