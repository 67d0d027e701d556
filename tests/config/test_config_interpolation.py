"""``${VAR}`` interpolation, as a pure function."""

from __future__ import annotations

import pytest

from opsbook.config.interpolation import interpolate

ENV = {"HOST": "db.internal", "EMPTY": "", "TOKEN": "t0k3n"}


@pytest.mark.parametrize(
    ("text", "value", "variables"),
    [
        ("plain", "plain", ()),
        ("${HOST}", "db.internal", ("HOST",)),
        ("postgres://${HOST}:5432/x", "postgres://db.internal:5432/x", ("HOST",)),
        ("${NOPE:-fallback}", "fallback", ("NOPE",)),
        ("${EMPTY:-fallback}", "fallback", ("EMPTY",)),
        ("${HOST:-fallback}", "db.internal", ("HOST",)),
        ("${NOPE:-}", "", ("NOPE",)),
        ("$${HOST}", "${HOST}", ()),
        ("a$$b$c", "a$$b$c", ()),
        ("$${HOST}-${TOKEN}", "${HOST}-t0k3n", ("TOKEN",)),
        ("${HOST}${HOST}", "db.internaldb.internal", ("HOST",)),
    ],
)
def test_expands(text: str, value: str, variables: tuple[str, ...]) -> None:
    result = interpolate(text, ENV)
    assert (result.value, result.variables, result.missing, result.malformed) == (
        value,
        variables,
        (),
        False,
    )


def test_missing_variables_are_named() -> None:
    result = interpolate("${A}-${HOST}-${B}-${A}", ENV)
    assert result.missing == ("A", "B")
    assert result.variables == ("A", "HOST", "B")


def test_empty_variable_without_default_is_not_missing() -> None:
    result = interpolate("${EMPTY}", ENV)
    assert (result.value, result.missing) == ("", ())


@pytest.mark.parametrize("text", ["${", "${HOST", "${1X}", "${A B}", "x ${}"])
def test_malformed_references(text: str) -> None:
    assert interpolate(text, ENV).malformed
