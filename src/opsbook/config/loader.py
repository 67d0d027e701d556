"""Loading ``opsbook.yaml``: read the file, parse, interpolate, validate, report every problem.

Only :func:`load_config` touches the outside world (the file and ``os.environ``);
:func:`parse_config` is the pure part, for tests and for callers holding text already.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from opsbook.config.errors import ConfigError, ConfigIssue
from opsbook.config.messages import validation_issues
from opsbook.config.models import OpsbookConfig
from opsbook.config.source import parse_document

DEFAULT_CONFIG_FILE = "opsbook.yaml"
CONFIG_ENV_VAR = "OPSBOOK_CONFIG"
EXTENSION_PREFIX = "x-"
"""Top-level keys starting with ``x-`` are ignored (as in Compose files): a home for anchors."""


def default_config_path(environ: Mapping[str, str] | None = None) -> str:
    """``$OPSBOOK_CONFIG`` if set and not empty, else ``opsbook.yaml``."""
    env = os.environ if environ is None else environ
    return env.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_FILE


def parse_config(text: str, filename: str, environ: Mapping[str, str]) -> OpsbookConfig:
    """Validate configuration ``text``; ``filename`` is only used in messages.

    Raises :class:`ConfigError` listing every problem found, sorted by line.
    """
    doc = parse_document(text, filename, environ)
    data = {k: v for k, v in doc.data.items() if not k.startswith(EXTENSION_PREFIX)}
    doc.data = data
    issues = list(doc.issues)
    config: OpsbookConfig | None = None
    try:
        config = OpsbookConfig.model_validate(data)
    except ValidationError as exc:
        issues.extend(validation_issues(exc, doc, OpsbookConfig))
    if issues or config is None:
        raise ConfigError(issues)
    return config


def read_config_text(path: str | os.PathLike[str]) -> str:
    """The file's text; raises :class:`ConfigError` with a one-line reason if unreadable."""
    name = os.fspath(path)

    def fail(message: str, line: int | None = None) -> ConfigError:
        return ConfigError([ConfigIssue(name, line, 1 if line else None, "", message)])

    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise fail("file not found") from None
    except IsADirectoryError:
        raise fail("is a directory, not a file") from None
    except PermissionError:
        raise fail("permission denied") from None
    except OSError as exc:
        raise fail(f"cannot be read ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise fail("is not UTF-8 text", line) from None


def load_config(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> OpsbookConfig:
    """Load and validate the configuration file at ``path``.

    ``${VAR}`` references are expanded from ``environ`` (default: the process environment).
    Raises :class:`ConfigError` listing every problem, each as ``FILE:LINE:COL: path: message``
    with FILE as given in ``path``.
    """
    text = read_config_text(path)
    return parse_config(text, os.fspath(path), os.environ if environ is None else environ)
