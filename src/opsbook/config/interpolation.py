"""``${VAR}`` interpolation of string values, so secrets can stay out of the file.

- ``${NAME}``: the variable's value; an error if it is not set.
- ``${NAME:-default}``: the default when the variable is unset or empty.
- ``$${``: a literal ``${``. Any other ``$`` is kept as is (passwords may contain ``$``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_REFERENCE_RE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


@dataclass(frozen=True, slots=True)
class Interpolated:
    """The result of interpolating one string.

    ``variables`` names every variable referenced (set, defaulted or missing) so that callers
    know the value came from the environment and must not be shown. ``missing`` lists variables
    that are unset and have no default; ``malformed`` is set when a ``${`` starts no valid
    reference. In both cases ``value`` is only a placeholder.
    """

    value: str
    variables: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    malformed: bool = False


def interpolate(text: str, environ: Mapping[str, str]) -> Interpolated:
    """Expand the references in ``text`` from ``environ`` (pure: the caller passes os.environ)."""
    if "$" not in text:
        return Interpolated(text)
    out: list[str] = []
    variables: list[str] = []
    missing: list[str] = []
    malformed = False
    pos = 0
    while (start := text.find("$", pos)) != -1:
        out.append(text[pos:start])
        if text.startswith("$${", start):
            out.append("${")
            pos = start + 3
            continue
        if not text.startswith("${", start):
            out.append("$")
            pos = start + 1
            continue
        match = _REFERENCE_RE.match(text, start)
        if match is None:
            malformed = True
            out.append(text[start:])
            pos = len(text)
            break
        name, default = match["name"], match["default"]
        variables.append(name)
        value = environ.get(name)
        if default is not None and not value:
            value = default
        if value is None:
            missing.append(name)
            value = ""
        out.append(value)
        pos = match.end()
    out.append(text[pos:])
    return Interpolated(
        value="".join(out),
        variables=tuple(dict.fromkeys(variables)),
        missing=tuple(dict.fromkeys(missing)),
        malformed=malformed,
    )
