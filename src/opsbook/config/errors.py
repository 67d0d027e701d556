"""Configuration problems as the user sees them: ``FILE:LINE:COL: path: message``."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

_PLAIN_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def format_path(loc: Sequence[str | int]) -> str:
    """``("services", 0, "labels", "app.io/x")`` -> ``services[0].labels['app.io/x']``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY_RE.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a configuration file.

    ``line`` and ``column`` are 1-based; both are ``None`` for problems with the file as a whole
    (not found, empty). ``path`` is the dotted location in the document (``services[0].name``),
    empty when the problem has no single place in the tree.
    """

    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}:{self.column if self.column is not None else 1}"
        if self.path:
            return f"{where}: {self.path}: {self.message}"
        return f"{where}: {self.message}"

    def sort_key(self) -> tuple[int, int, str, str]:
        # File-level problems (no line) come first: they usually explain everything after them.
        return (self.line or 0, self.column or 0, self.path, self.message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
        }


class ConfigError(Exception):
    """The configuration is unusable; ``issues`` lists every problem found, sorted by line."""

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        self.issues: list[ConfigIssue] = sorted(set(issues), key=ConfigIssue.sort_key)
        if not self.issues:
            raise ValueError("ConfigError needs at least one issue")
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(issue) for issue in self.issues)
