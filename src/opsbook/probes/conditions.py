"""The condition language of probes: ``[STATUS] == 200``, ``[BODY].status == pass``, ...

A condition is ``<placeholder> <operator> <value>``. Placeholders read what the probe observed:

- ``[STATUS]``: the HTTP status code;
- ``[RESPONSE_TIME]``: milliseconds from the request to the end of the body;
- ``[BODY]``: the body as text; ``[BODY].a.b[0].c``: a JSON path into it;
- ``[CERT_EXPIRY]``: time left until the server's (leaf) certificate expires;
- ``[CONNECTED]``: whether a connection was made (``true``/``false``);
- ``len(<placeholder>)``: the length of a text, list or object.

Operators: ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``. Values: numbers, durations
(``168h``, ``30d``; compared with ``[CERT_EXPIRY]`` and ``[RESPONSE_TIME]``), ``true``/``false``,
text, quoted or bare; ``pat(*glob*)`` and ``any(a, b, ...)`` with ``==`` / ``!=``.

Parsing is pure and happens when the config is checked, so a bad condition is a config error
with its file and line; evaluation never raises: a missing JSON path or a body that is not JSON
fails the condition with the reason.
"""

from __future__ import annotations

import enum
import fnmatch
import json
import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from opsbook.config import format_duration, parse_duration


class ConditionError(ValueError):
    """A condition that does not parse; ``column`` is 1-based."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"column {column}: {message}")
        self.message = message
        self.column = column


class Placeholder(enum.Enum):
    STATUS = "STATUS"
    RESPONSE_TIME = "RESPONSE_TIME"
    BODY = "BODY"
    CERT_EXPIRY = "CERT_EXPIRY"
    CONNECTED = "CONNECTED"


OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
_ORDERING = {"<", "<=", ">", ">="}

PathStep = str | int


@dataclass(frozen=True, slots=True)
class Operand:
    """The left side: a placeholder, a JSON path into the body, optionally ``len()``."""

    placeholder: Placeholder
    path: tuple[PathStep, ...] = ()
    length: bool = False

    def __str__(self) -> str:
        text = f"[{self.placeholder.value}]"
        for step in self.path:
            text += f"[{step}]" if isinstance(step, int) else f".{step}"
        return f"len({text})" if self.length else text


class ValueKind(enum.Enum):
    NUMBER = "number"
    DURATION = "duration"
    BOOLEAN = "boolean"
    TEXT = "text"
    PATTERN = "pattern"
    ANY = "any"


@dataclass(frozen=True, slots=True)
class Expected:
    kind: ValueKind
    number: float = 0.0
    text: str = ""
    options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Condition:
    source: str
    operand: Operand
    operator: str
    expected: Expected


@dataclass(frozen=True, slots=True)
class Observation:
    """What one probe saw; None where it does not apply (no TLS, no HTTP...)."""

    status: int | None = None
    response_time_ms: float | None = None
    body: str | None = None
    cert_expiry_s: float | None = None
    connected: bool | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    condition: str
    success: bool
    observed: str
    """The left side's value as the user reads it, or why it has none."""


_PLACEHOLDER_RE = re.compile(r"\[([A-Z_]+)\]")
_PATH_STEP_RE = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]")
_NUMBER_RE = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\Z")
_DURATION_RE = re.compile(r"(\d+(ms|s|m|h|d|w|y))+\Z")


def parse_condition(text: str) -> Condition:
    source = text.strip()
    offset = len(text) - len(text.lstrip()) + 1
    if not source:
        raise ConditionError("empty condition; write e.g. '[STATUS] == 200'", 1)
    operand, rest_at = _parse_operand(source, offset)
    rest = source[rest_at:]
    stripped = rest.lstrip()
    column = offset + rest_at + (len(rest) - len(stripped))
    operator = next((op for op in OPERATORS if stripped.startswith(op)), None)
    if operator is None:
        raise ConditionError(
            f"expected an operator ({', '.join(OPERATORS)}) after {operand}, "
            f"found {stripped[:10]!r}"
            if stripped
            else f"expected an operator after {operand}",
            column,
        )
    value_text = stripped[len(operator) :].strip()
    value_column = column + len(operator) + (len(stripped) - len(operator) - len(value_text))
    if not value_text:
        raise ConditionError(f"expected a value after {operator!r}", value_column)
    expected = _parse_expected(value_text, value_column)
    _check_types(operand, operator, expected, value_column)
    return Condition(source, operand, operator, expected)


def _parse_operand(source: str, offset: int) -> tuple[Operand, int]:
    length = source.startswith("len(")
    position = 4 if length else 0
    match = _PLACEHOLDER_RE.match(source, position)
    if match is None:
        raise ConditionError(
            "a condition starts with a placeholder: [STATUS], [RESPONSE_TIME], [BODY], "
            "[CERT_EXPIRY], [CONNECTED] or len(...)",
            offset + position,
        )
    try:
        placeholder = Placeholder(match.group(1))
    except ValueError:
        known = ", ".join(f"[{p.value}]" for p in Placeholder)
        raise ConditionError(
            f"unknown placeholder [{match.group(1)}]; known: {known}", offset + position
        ) from None
    position = match.end()
    path: list[PathStep] = []
    while True:
        step = _PATH_STEP_RE.match(source, position)
        if step is None:
            break
        path.append(step.group(1) if step.group(1) is not None else int(step.group(2)))
        position = step.end()
    if path and placeholder is not Placeholder.BODY:
        raise ConditionError(f"only [BODY] takes a JSON path, not [{placeholder.value}]", offset)
    if position < len(source) and source[position] == ".":
        raise ConditionError("a JSON path step is a name or [index]", offset + position + 1)
    if length:
        if not source.startswith(")", position):
            raise ConditionError("len( is not closed", offset + position)
        position += 1
        if placeholder is not Placeholder.BODY:
            raise ConditionError("len() applies to [BODY] and JSON paths into it", offset)
    return Operand(placeholder, tuple(path), length), position


def _parse_expected(text: str, column: int) -> Expected:
    if text.startswith("pat(") or text.startswith("any("):
        if not text.endswith(")"):
            raise ConditionError(f"{text[:3]}( is not closed", column)
        inner = text[4:-1]
        if text.startswith("pat("):
            return Expected(ValueKind.PATTERN, text=_unquote(inner.strip()))
        options = tuple(_unquote(part.strip()) for part in inner.split(","))
        if not all(options):
            raise ConditionError("any() takes a comma-separated list of values", column)
        return Expected(ValueKind.ANY, options=options)
    if text in ("true", "false"):
        return Expected(ValueKind.BOOLEAN, number=1.0 if text == "true" else 0.0, text=text)
    if _NUMBER_RE.match(text):
        return Expected(ValueKind.NUMBER, number=float(text), text=text)
    if _DURATION_RE.match(text):
        return Expected(ValueKind.DURATION, number=parse_duration(text).total_seconds(), text=text)
    return Expected(ValueKind.TEXT, text=_unquote(text))


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _check_types(operand: Operand, operator: str, expected: Expected, column: int) -> None:
    placeholder = operand.placeholder
    if expected.kind in (ValueKind.PATTERN, ValueKind.ANY) and operator not in ("==", "!="):
        raise ConditionError(f"{expected.kind.value}() only goes with == or !=", column)
    if operand.length or placeholder is Placeholder.STATUS:
        if expected.kind not in (ValueKind.NUMBER, ValueKind.ANY):
            raise ConditionError(f"{operand} is a number; compare it with a number", column)
    elif placeholder is Placeholder.RESPONSE_TIME:
        if expected.kind not in (ValueKind.NUMBER, ValueKind.DURATION):
            raise ConditionError(
                "[RESPONSE_TIME] is in milliseconds; compare it with a number or a "
                "duration like 500ms",
                column,
            )
    elif placeholder is Placeholder.CERT_EXPIRY:
        if expected.kind is not ValueKind.DURATION:
            raise ConditionError(
                "[CERT_EXPIRY] is a time left; compare it with a duration like 168h or 30d",
                column,
            )
    elif placeholder is Placeholder.CONNECTED:
        if expected.kind is not ValueKind.BOOLEAN or operator not in ("==", "!="):
            raise ConditionError("[CONNECTED] compares with == true or == false", column)
    elif operator in _ORDERING and expected.kind not in (ValueKind.NUMBER, ValueKind.DURATION):
        raise ConditionError(f"{operator} compares numbers; {expected.text!r} is not one", column)


def evaluate(condition: Condition, observation: Observation) -> Outcome:
    """Whether ``observation`` satisfies ``condition``; never raises."""
    observed, reason = _observe(condition.operand, observation)
    if reason is not None:
        return Outcome(condition.source, False, reason)
    success = _compare(observed, condition.operand, condition.operator, condition.expected)
    if condition.operand.placeholder is Placeholder.CERT_EXPIRY and not condition.operand.length:
        shown = format_duration(timedelta(seconds=round(observed)))
    else:
        shown = _show(observed)
    return Outcome(condition.source, success, shown)


def _observe(operand: Operand, observation: Observation) -> tuple[Any, str | None]:
    placeholder = operand.placeholder
    if placeholder is Placeholder.STATUS:
        if observation.status is None:
            return None, "no HTTP status (the request did not complete)"
        return observation.status, None
    if placeholder is Placeholder.RESPONSE_TIME:
        if observation.response_time_ms is None:
            return None, "no response time (the request did not complete)"
        return observation.response_time_ms, None
    if placeholder is Placeholder.CERT_EXPIRY:
        if observation.cert_expiry_s is None:
            return None, "no certificate (not a TLS connection)"
        return observation.cert_expiry_s, None
    if placeholder is Placeholder.CONNECTED:
        return bool(observation.connected), None
    if observation.body is None:
        return None, "no body (the request did not complete)"
    value: Any = observation.body
    if operand.path:
        try:
            value = json.loads(observation.body)
        except ValueError:
            return None, "the body is not JSON"
        for step in operand.path:
            found, value = _step_into(value, step)
            if not found:
                return None, f"the body has no {operand}"
    if operand.length:
        if not isinstance(value, str | list | dict):
            return None, f"{operand} has no length ({_show(value)})"
        return len(value), None
    return value, None


def _step_into(value: Any, step: PathStep) -> tuple[bool, Any]:
    if isinstance(step, int):
        if isinstance(value, list) and step < len(value):
            return True, value[step]
        return False, None
    if isinstance(value, dict) and step in value:
        return True, value[step]
    return False, None


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:200] + "…"
    if isinstance(value, dict | list):
        text = json.dumps(value, separators=(",", ":"))
        return text if len(text) <= 200 else text[:200] + "…"
    return str(value)


def _compare(observed: Any, operand: Operand, operator: str, expected: Expected) -> bool:
    if expected.kind is ValueKind.PATTERN:
        matched = fnmatch.fnmatchcase(_show(observed), expected.text)
        return matched if operator == "==" else not matched
    if expected.kind is ValueKind.ANY:
        found = _show(observed) in expected.options
        return found if operator == "==" else not found
    if expected.kind in (ValueKind.NUMBER, ValueKind.DURATION):
        number = _as_number(observed)
        if number is None:
            return operator == "!="
        limit = expected.number
        if expected.kind is ValueKind.DURATION and operand.placeholder is Placeholder.RESPONSE_TIME:
            limit *= 1000  # the response time is in milliseconds, durations in seconds
        return _ordered(number, operator, limit)
    # Booleans and text compare as the user reads them: true/false, the text itself.
    equal = _show(observed) == expected.text
    return equal if operator == "==" else not equal


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if not math.isnan(number) else None
    return None


def _ordered(number: float, operator: str, limit: float) -> bool:
    if operator == "==":
        return number == limit
    if operator == "!=":
        return number != limit
    if operator == "<":
        return number < limit
    if operator == "<=":
        return number <= limit
    if operator == ">":
        return number > limit
    return number >= limit
