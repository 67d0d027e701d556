"""YAML text to plain data, remembering where every value came from.

PyYAML's ``safe_load`` forgets positions and silently keeps the last of two equal keys, so the
document is composed into nodes (which carry line/column marks) and converted here: duplicate
keys become errors, ``${VAR}`` references in strings are expanded, and each value's position and
interpolated variables are recorded under its path, e.g. ``("services", 0, "name")``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from opsbook.config.errors import ConfigError, ConfigIssue, format_path
from opsbook.config.interpolation import interpolate

Loc = tuple[str | int, ...]

MAX_NODES = 100_000
"""Limit on values after alias expansion: a guard against "billion laughs" documents."""

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True, slots=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(frozen=True, slots=True)
class Entry:
    """Where one value of the document is written."""

    value: Position
    key: Position | None = None  # the key's position, for values of a mapping
    variables: tuple[str, ...] = ()  # environment variables interpolated into the value


@dataclass(slots=True)
class Document:
    """A parsed document: ``data`` for validation, ``entries`` to locate problems in it."""

    filename: str
    data: dict[str, Any]
    entries: dict[Loc, Entry]
    issues: list[ConfigIssue] = field(default_factory=list)
    unusable: set[Loc] = field(default_factory=set)
    """Paths whose value is a placeholder (a variable was missing): not worth validating."""


class _Loader(yaml.SafeLoader):
    """SafeLoader without changes; named so the intent (never yaml.Loader) is explicit."""


class _TooLarge(Exception):
    pass


def _position(mark: yaml.Mark | None) -> Position:
    if mark is None:
        return Position(1, 1)
    return Position(mark.line + 1, mark.column + 1)


def _describe(node: Node) -> str:
    if isinstance(node, SequenceNode):
        return "a list"
    if isinstance(node, MappingNode):
        return "a mapping"
    return "null" if node.tag.endswith(":null") else "a single value"


class _Converter:
    def __init__(self, filename: str, environ: Mapping[str, str]) -> None:
        self.filename = filename
        self.environ = environ
        self.constructor = SafeConstructor()
        self.entries: dict[Loc, Entry] = {}
        self.issues: list[ConfigIssue] = []
        self.unusable: set[Loc] = set()
        self.budget = MAX_NODES
        self.active: set[int] = set()  # ids of the collections being converted (cycle guard)

    def issue(self, at: Position, loc: Loc, message: str) -> None:
        self.issues.append(
            ConfigIssue(self.filename, at.line, at.column, format_path(loc), message)
        )

    def convert(self, node: Node, loc: Loc, key: Position | None = None) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _TooLarge
        at = _position(node.start_mark)
        self.entries[loc] = Entry(at, key)
        if isinstance(node, ScalarNode):
            return self.scalar(node, loc, at, key)
        if id(node) in self.active:
            self.issue(at, loc, "an alias refers to a value that contains it (recursive alias)")
            self.unusable.add(loc)
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self.mapping(node, loc)
            assert isinstance(node, SequenceNode)
            return [self.convert(child, (*loc, i)) for i, child in enumerate(node.value)]
        finally:
            self.active.discard(id(node))

    def scalar(self, node: ScalarNode, loc: Loc, at: Position, key: Position | None) -> Any:
        try:
            value = self.constructor.construct_object(node, deep=True)
        except ConstructorError as exc:
            self.issue(_position(exc.problem_mark), loc, f"YAML error: {exc.problem}")
            self.unusable.add(loc)
            return None
        if not isinstance(value, str):
            return value
        result = interpolate(value, self.environ)
        if result.variables:
            self.entries[loc] = Entry(at, key, result.variables)
        for name in result.missing:
            self.issue(at, loc, f"environment variable {name} is not set")
        if result.malformed:
            self.issue(
                at,
                loc,
                "'${' must start a reference like ${NAME} or ${NAME:-default}"
                " (write $${ for a literal '${')",
            )
        if result.missing or result.malformed:
            self.unusable.add(loc)
        return result.value

    def mapping(self, node: MappingNode, loc: Loc) -> dict[str, Any]:
        own_entry = self.entries[loc]
        result: dict[str, Any] = {}
        # `<<: *defaults` supplies keys not written explicitly; earlier sources win. Merged
        # values go in first so that explicit keys then overwrite both value and position.
        merges = [
            source
            for key_node, value_node in node.value
            if key_node.tag == _MERGE_TAG
            for source in self.merge_sources(value_node, loc)
        ]
        for source in reversed(merges):
            merged = self.convert(source, loc)
            if isinstance(merged, dict):
                result.update(merged)
        self.entries[loc] = own_entry
        seen: dict[str, Position] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key_at = _position(key_node.start_mark)
            if not isinstance(key_node, ScalarNode):
                self.issue(key_at, loc, f"keys must be plain strings (got {_describe(key_node)})")
                continue
            # The key as written: YAML 1.1 would turn `on:` into True and `1:` into 1.
            key = str(key_node.value)
            if key in seen:
                self.issue(
                    key_at,
                    (*loc, key),
                    f"duplicate key '{key}' (first at line {seen[key].line})",
                )
                continue
            seen[key] = key_at
            result[key] = self.convert(value_node, (*loc, key), key_at)
        return result

    def merge_sources(self, node: Node, loc: Loc) -> list[MappingNode]:
        if isinstance(node, MappingNode):
            return [node]
        if isinstance(node, SequenceNode) and all(isinstance(n, MappingNode) for n in node.value):
            return [n for n in node.value if isinstance(n, MappingNode)]
        self.issue(
            _position(node.start_mark),
            loc,
            "'<<' must merge a mapping or a list of mappings (an alias like *defaults)",
        )
        return []


def _syntax_error(filename: str, text: str, exc: yaml.YAMLError) -> ConfigIssue:
    if isinstance(exc, yaml.reader.ReaderError):
        # Reader errors carry a character offset instead of a mark.
        before = text[: exc.position]
        line = before.count("\n") + 1
        column = exc.position - (before.rfind("\n") + 1) + 1
        char = exc.character
        shown = f"U+{char:04X}" if isinstance(char, int) else repr(char)
        return ConfigIssue(
            filename, line, column, "", f"YAML syntax error: character {shown} is not allowed"
        )
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if problem == "but found another document":
            problem = "the file must hold one YAML document, but a second one starts here"
        elif "'\\t'" in problem:
            problem += " (indent with spaces, not tabs)"
        elif exc.context and exc.context_mark is not None and exc.problem:
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        at = _position(mark)
        return ConfigIssue(filename, at.line, at.column, "", f"YAML syntax error: {problem}")
    return ConfigIssue(filename, None, None, "", f"YAML syntax error: {exc}")


def parse_document(text: str, filename: str, environ: Mapping[str, str]) -> Document:
    """Parse YAML text into a :class:`Document` (pure: no file or environment access).

    Raises :class:`ConfigError` when there is nothing to validate (syntax error, empty file,
    top level not a mapping); other problems are collected in ``Document.issues``.
    """
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError([_syntax_error(filename, text, exc)]) from None
    if root is None:
        raise ConfigError(
            [
                ConfigIssue(
                    filename,
                    None,
                    None,
                    "",
                    "the file is empty (expected a mapping with keys like 'services' and 'slos')",
                )
            ]
        )
    if not isinstance(root, MappingNode):
        at = _position(root.start_mark)
        raise ConfigError(
            [
                ConfigIssue(
                    filename,
                    at.line,
                    at.column,
                    "",
                    "the top level must be a mapping with keys like 'services:' "
                    f"(got {_describe(root)})",
                )
            ]
        )
    converter = _Converter(filename, environ)
    try:
        data = converter.convert(root, ())
    except _TooLarge:
        raise ConfigError(
            [
                ConfigIssue(
                    filename,
                    None,
                    None,
                    "",
                    f"too many values after expanding aliases (more than {MAX_NODES})",
                )
            ]
        ) from None
    return Document(filename, data, converter.entries, converter.issues, converter.unusable)
