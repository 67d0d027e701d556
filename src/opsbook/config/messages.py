"""pydantic's validation errors, rewritten as short located messages for people.

Each error is placed using the :class:`~opsbook.config.source.Document` it came from: its path
in the data gives the line and column, and tells whether the value came from an environment
variable, in which case it is never shown (``(value from ${VAR})`` instead of ``(got ...)``).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from opsbook.config.errors import ConfigIssue, format_path
from opsbook.config.source import Document, Entry, Loc, Position

_MAX_SHOWN = 60


@dataclass(frozen=True, slots=True)
class _Error:
    """One pydantic error, resolved against the document."""

    type: str
    ctx: Mapping[str, Any]
    loc: Loc  # pydantic's location (with union tags), for schema lookups
    path: Loc  # the location in the data (no union tags)
    absent: str | None  # the last key of `loc` when it is not in the data (missing, defaulted)
    value: Any
    doc: Document
    about_key: bool = False  # the error is about a mapping key, never interpolated

    def entry(self, path: Loc | None = None) -> Entry | None:
        return self.doc.entries.get(self.path if path is None else path)

    def variables(self, path: Loc | None = None) -> tuple[str, ...]:
        if path is None and (self.absent is not None or self.about_key):
            return ()
        entry = self.entry(path)
        return entry.variables if entry is not None else ()

    def shown(self) -> str:
        """The value as it may be shown: itself, or the variables it came from."""
        names = self.variables()
        if names:
            return ", ".join(f"${{{name}}}" for name in names)
        return _show(self.value)

    def got(self) -> str:
        names = self.variables()
        if names:
            return f" (value from {self.shown()})"
        if self.absent is not None:
            return ""
        return f" (got {_show(self.value)})"

    def source(self) -> str:
        """Only where the value came from: for secrets, whose value is never shown."""
        return f" (value from {self.shown()})" if self.variables() else ""


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 4] + "...'"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, bytes):
        return "binary data"
    return str(value)  # dates and times, as YAML reads them


def _one_of(expected: str) -> str:
    # pydantic writes "'a', 'b' or 'c'"; a list reads better with commas only.
    head, sep, tail = expected.rpartition(" or ")
    return f"{head}, {tail}" if sep else expected


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# --- schema lookups --------------------------------------------------------------------------


def _discriminator(annotation: Any) -> str | None:
    """The discriminator field of a tagged union annotation (``Field(discriminator=...)``)."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            for meta in annotation.__metadata__:
                if isinstance(meta, FieldInfo) and isinstance(meta.discriminator, str):
                    return meta.discriminator
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType) and _optional_of(annotation) is not None:
            annotation = _optional_of(annotation)
        else:
            return None


def _optional_of(annotation: Any) -> Any:
    members = [a for a in typing.get_args(annotation) if a is not type(None)]
    return members[0] if len(members) == 1 else None


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType) and _optional_of(annotation) is not None:
            annotation = _optional_of(annotation)
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _step(annotation: Any, part: str | int) -> Any:
    """The annotation one location ``part`` below ``annotation``; None if there is none."""
    discriminator = _discriminator(annotation)
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if _is_model(annotation):
        info = annotation.model_fields.get(part) if isinstance(part, str) else None
        if info is None:
            return None
        if isinstance(info.discriminator, str):  # pydantic moved it off the annotation
            return typing.Annotated[info.annotation, info]
        return info.annotation
    if origin is list and isinstance(part, int):
        return typing.get_args(annotation)[0]
    if origin is dict and isinstance(part, str):
        return typing.get_args(annotation)[1]
    if origin in (Union, types.UnionType) and discriminator is not None:
        # pydantic puts the tag of a discriminated union in the location.
        tagged = [
            member
            for member in typing.get_args(annotation)
            if _is_model(member)
            and discriminator in member.model_fields
            and part in typing.get_args(member.model_fields[discriminator].annotation)
        ]
        return tagged[0] if len(tagged) == 1 else None
    return None


def annotation_at(root: type[BaseModel], loc: Sequence[str | int]) -> Any:
    """The schema's annotation at pydantic location ``loc``, or None if it has none there."""
    annotation: Any = root
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return None
    return annotation


def keys_at(root: type[BaseModel], loc: Sequence[str | int]) -> list[str] | None:
    """The keys the schema allows at pydantic location ``loc``, or None if not a model there."""
    annotation = _unwrap(annotation_at(root, loc))
    if not _is_model(annotation):
        return None
    return [info.alias or name for name, info in annotation.model_fields.items()]


# --- messages per error type -----------------------------------------------------------------


def _suggestion(key: str, valid: list[str]) -> str | None:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if not close:
        close = [v for v in valid if v.lower() == key.lower()]
    return close[0] if close else None


def _unknown_key(error: _Error, root: type[BaseModel]) -> str:
    valid = keys_at(root, error.loc[:-1])
    if not valid:
        return "unknown key"
    suggestion = _suggestion(str(error.path[-1]) if error.path else "", valid)
    if suggestion:
        return f"unknown key (did you mean '{suggestion}'?)"
    return "unknown key (valid keys: " + ", ".join(f"'{v}'" for v in valid) + ")"


def _misspelt(doc: Document, root: type[BaseModel], errors: list[Any]) -> set[Loc]:
    """Paths of required keys that were written with a typo (already reported as unknown)."""
    meant: set[Loc] = set()
    for raw in errors:
        if raw["type"] == "extra_forbidden":
            loc = tuple(raw["loc"])
            path = _resolve(root, doc.data, loc)[0]
            suggestion = _suggestion(str(loc[-1]), keys_at(root, loc[:-1]) or [])
            if suggestion and path:
                meant.add((*path[:-1], suggestion))
    return meant


def _string_type(error: _Error) -> str:
    if not error.variables() and isinstance(error.value, bool | int | float):
        # YAML read it as a number or boolean; quoting is the fix people need to hear.
        return f"must be a string (got {_show(error.value)}; put it in quotes to make it text)"
    return "must be a string" + error.got()


def _timeout_exceeds_interval(error: _Error) -> str:
    parent = error.path[:-1] if error.absent is None else error.path
    parts = {}
    for name in ("timeout", "interval"):
        entry = error.entry((*parent, name))
        parts[name] = (
            ", ".join(f"${{{v}}}" for v in entry.variables)
            if entry is not None and entry.variables
            else str(error.ctx[name])
        )
    default = " (the default)" if error.ctx.get("timeout_is_default") else ""
    return f"timeout {parts['timeout']}{default} is longer than interval {parts['interval']}"


def _duplicate_name(error: _Error) -> str:
    list_path = error.path[:-2]
    first = error.entry((*list_path, int(error.ctx["first_index"]), "name"))
    where = f" (first at line {first.value.line})" if first is not None else ""
    return f"duplicate {error.ctx['what']} name {error.shown()}{where}"


def _unknown_service(error: _Error) -> str:
    known: list[str] = list(error.ctx.get("known", []))
    message = f"no service named {error.shown()} in services"
    if not known:
        return message + " (there are no services)"
    close = [] if error.variables() else difflib.get_close_matches(str(error.value), known, n=1)
    if close:
        return message + f" (did you mean '{close[0]}'?)"
    return message + " (services: " + ", ".join(f"'{k}'" for k in known) + ")"


def _unknown_dependency(error: _Error) -> str:
    message = f"no service and no probe of this service named {error.shown()}"
    known: list[str] = list(error.ctx.get("known", []))
    close = [] if error.variables() else difflib.get_close_matches(str(error.value), known, n=1)
    return message + (f" (did you mean '{close[0]}'?)" if close else "")


def _with_got(text: str) -> Callable[[_Error], str]:
    return lambda error: text.format(**error.ctx) + error.got()


def _with_source(text: str) -> Callable[[_Error], str]:
    return lambda error: text.format(**error.ctx) + error.source()


def _length(unit: str) -> Callable[[_Error], str]:
    def message(error: _Error) -> str:
        low = int(error.ctx.get("min_length", 0))
        if unit == "character" and low == 1:
            return "must not be empty"
        return f"must have at least {_plural(low, unit)}"

    return message


def _max_length(unit: str) -> Callable[[_Error], str]:
    return lambda error: f"must have at most {_plural(int(error.ctx['max_length']), unit)}"


_MAPPING = "must be a mapping"
_MESSAGES: dict[str, Callable[[_Error], str]] = {
    "string_type": _string_type,
    "int_type": _with_got("must be an integer"),
    "int_parsing": _with_got("must be an integer"),
    "int_from_float": _with_got("must be an integer"),
    "float_type": _with_got("must be a number"),
    "float_parsing": _with_got("must be a number"),
    "number_type": _with_got("must be a number"),
    "finite_number": _with_got("must be a finite number"),
    "bool_type": _with_got("must be true or false"),
    "bool_parsing": _with_got("must be true or false"),
    "list_type": _with_got("must be a list"),
    "dict_type": _with_got(_MAPPING),
    "model_type": _with_got(_MAPPING),
    "model_attributes_type": _with_got(_MAPPING),
    "literal_error": lambda e: f"must be one of {_one_of(str(e.ctx['expected']))}" + e.got(),
    "enum": lambda e: f"must be one of {_one_of(str(e.ctx['expected']))}" + e.got(),
    "greater_than": _with_got("must be greater than {gt}"),
    "greater_than_equal": _with_got("must be at least {ge}"),
    "less_than": _with_got("must be less than {lt}"),
    "less_than_equal": _with_got("must be at most {le}"),
    "string_too_short": _length("character"),
    "string_too_long": _max_length("character"),
    "too_short": _length("item"),
    "too_long": _max_length("item"),
    "string_pattern_mismatch": _with_got("must match the pattern '{pattern}'"),
    "url_parsing": _with_got("must be a valid URL"),
    "url_scheme": _with_got("must be a URL with scheme {expected_schemes}"),
    "url_type": _with_got("must be a URL"),
    # Our own types (opsbook.config.fields, .durations, .models).
    "duration": _with_got("must be a duration like 30s, 5m, 1h"),
    "duration_too_long": _with_got("is too long to be a duration"),
    "duration_positive": _with_got("must be longer than 0s"),
    "between": _with_got("must be between {low} and {high}"),
    "empty": _with_got("must not be empty"),
    "slug": _with_got("must use only lowercase letters, digits, '-' and '_'"),
    "http_url": _with_got("must be an http(s) URL like https://api.example.com"),
    "url_or_path": _with_got("must be an http(s) URL or a path starting with '/', like /health"),
    "email": _with_got("must be an e-mail address like ops@example.com"),
    "label_name": _with_got(
        "label names must be letters, digits and '_', not start with a digit or '__'"
    ),
    "needs_base_url": _with_got("is a path, so the service needs a base 'url' to resolve it"),
    "secret_type": _with_source("must be a string"),
    "secret_empty": _with_source("must not be empty"),
    "secret_http_url": _with_source("must be an http(s) URL"),
    "timeout_exceeds_interval": _timeout_exceeds_interval,
    "duplicate_name": _duplicate_name,
    "unknown_service": _unknown_service,
    "unknown_dependency": _unknown_dependency,
    "host_port": _with_got("must be host:port, like db.internal:5432"),
    "secret_url_scheme": _with_source("must be a URL like {example}"),
}


# --- placing errors --------------------------------------------------------------------------


def _resolve(root: type[BaseModel], data: Any, loc: Loc) -> tuple[Loc, str | None, bool, Any]:
    """Follow pydantic's ``loc`` through the data.

    Returns the data path, the trailing key absent from the data (a missing or defaulted key),
    whether the error is about a mapping key itself (pydantic's ``[key]``), and the value.
    """
    node, path, absent, about_key = data, [], None, False
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if part == "[key]":
            about_key = True
        elif isinstance(node, Mapping):
            tag_key = _discriminator(annotation_at(root, loc[:index]))
            if tag_key is not None and node.get(tag_key) == part:
                continue  # the union tag pydantic adds after a tagged item
            if part in node:
                node = node[part]
                path.append(part)
            elif last and isinstance(part, str):
                absent, node = part, None
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
    value = path[-1] if about_key and path else node
    return tuple(path), absent, about_key, value


def _place(doc: Document, path: Loc, on_key: bool) -> Position | None:
    for end in range(len(path), -1, -1):
        entry = doc.entries.get(path[:end])
        if entry is not None:
            if on_key and end == len(path) and entry.key is not None:
                return entry.key
            return entry.value
    return None


def _issue(doc: Document, root: type[BaseModel], raw: Mapping[str, Any]) -> ConfigIssue | None:
    kind = str(raw["type"])
    ctx: Mapping[str, Any] = raw.get("ctx") or {}
    loc: Loc = tuple(raw["loc"])
    path, absent, about_key, value = _resolve(root, doc.data, loc)
    if any(path[:end] in doc.unusable for end in range(len(path) + 1)):
        return None  # already reported: a variable it needs is not set
    error = _Error(kind, ctx, loc, path, absent, value, doc, about_key)
    shown_path: Loc = path
    on_key = about_key or kind == "extra_forbidden"

    tag_key = str(ctx.get("discriminator", "")).strip("'")  # for union_tag_* errors
    if kind == "missing" and absent is not None:
        message = f"required key '{absent}' is missing"
    elif kind == "union_tag_not_found":
        message = f"required key '{tag_key}' is missing"
    elif kind == "union_tag_invalid":
        shown_path = (*path, tag_key)
        tag = _Error(kind, ctx, loc, shown_path, None, ctx.get("tag"), doc)
        message = f"must be one of {ctx.get('expected_tags', '')}" + tag.got()
    elif kind == "extra_forbidden":
        message = _unknown_key(error, root)
    elif kind in _MESSAGES:
        if absent is not None:
            shown_path = (*path, absent)
        message = _MESSAGES[kind](error)
    else:
        # Unmapped types keep pydantic's wording; pydantic's own messages never quote the
        # input, so secrets stay out (validators we write must not quote it either).
        message = str(raw["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if absent is not None:
            shown_path = (*path, absent)
    at = _place(doc, shown_path if kind == "union_tag_invalid" else path, on_key)
    return ConfigIssue(
        doc.filename,
        at.line if at else None,
        at.column if at else None,
        format_path(shown_path),
        message,
    )


def validation_issues(
    error: ValidationError, doc: Document, root: type[BaseModel]
) -> list[ConfigIssue]:
    """Rewrite ``error`` (from validating ``doc.data`` against ``root``) into located issues."""
    errors = error.errors(include_url=False)
    # "unknown key 'nmae' (did you mean 'name'?)" already explains the missing 'name'.
    misspelt = _misspelt(doc, root, errors)
    issues = []
    for raw in errors:
        if raw["type"] == "missing":
            path, absent, _, _ = _resolve(root, doc.data, tuple(raw["loc"]))
            if absent is not None and (*path, absent) in misspelt:
                continue
        issue = _issue(doc, root, raw)
        if issue is not None:
            issues.append(issue)
    return issues
