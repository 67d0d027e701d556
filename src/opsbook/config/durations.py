"""Prometheus-style durations (``30s``, ``5m``, ``1h30m``, ``30d``, ``1w``, ``500ms``).

The grammar is Prometheus's: one or more ``<integer><unit>`` parts, units from largest to
smallest, each at most once; units are ``y`` (365 days), ``w``, ``d``, ``h``, ``m``, ``s``, ``ms``.
A bare number is rejected on purpose: ``timeout: 30`` is ambiguous (seconds? milliseconds?).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer
from pydantic_core import PydanticCustomError

DURATION_HINT = "must be a duration like 30s, 5m, 1h"

_UNITS_MS: tuple[tuple[str, int], ...] = (
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
)
_DURATION_RE = re.compile(
    "".join(f"(?:(?P<{unit}>[0-9]+){unit})?" for unit, _ in _UNITS_MS), re.ASCII
)
# format_duration leaves out y and w: "30d" reads better than Prometheus's "4w2d".
_FORMAT_UNITS = tuple((unit, ms) for unit, ms in _UNITS_MS if unit not in {"y", "w"})


class DurationError(ValueError):
    """The text is not a duration; ``str()`` is the user-facing reason."""


def parse_duration(text: str) -> timedelta:
    """Parse ``1h30m`` into a timedelta; raise :class:`DurationError` if it is not a duration."""
    match = _DURATION_RE.fullmatch(text)
    if not text or match is None:
        raise DurationError(DURATION_HINT)
    total_ms = sum(int(match[unit]) * ms for unit, ms in _UNITS_MS if match[unit] is not None)
    try:
        return timedelta(milliseconds=total_ms)
    except OverflowError:
        raise DurationError("is too long to be a duration") from None


def format_duration(value: timedelta) -> str:
    """The shortest Prometheus-style text for ``value`` (``timedelta(minutes=90)`` -> ``1h30m``).

    Raises ValueError for negative values and sub-millisecond precision, which have no spelling.
    """
    if value < timedelta(0):
        raise ValueError(f"negative durations cannot be formatted: {value!r}")
    micros = value // timedelta(microseconds=1)
    if micros % 1000:
        raise ValueError(f"durations are formatted to the millisecond: {value!r}")
    remaining = micros // 1000
    if remaining == 0:
        return "0s"
    parts: list[str] = []
    for unit, ms in _FORMAT_UNITS:
        count, remaining = divmod(remaining, ms)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _validate_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        # Includes bare integers and bools: YAML turns `30` into an int, which we reject.
        raise PydanticCustomError("duration", DURATION_HINT)
    try:
        return parse_duration(value)
    except DurationError as exc:
        if str(exc) == DURATION_HINT:
            raise PydanticCustomError("duration", DURATION_HINT) from None
        raise PydanticCustomError("duration_too_long", str(exc)) from None


def _validate_positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise PydanticCustomError("duration_positive", "must be longer than 0s")
    return value


def _serialize(value: timedelta) -> str:
    return format_duration(value)


Duration = Annotated[
    timedelta,
    BeforeValidator(_validate_duration),
    PlainSerializer(_serialize, return_type=str, when_used="json"),
]
"""A duration field: Prometheus-style text in the file, a timedelta in Python."""

PositiveDuration = Annotated[
    timedelta,
    BeforeValidator(_validate_duration),
    AfterValidator(_validate_positive),
    PlainSerializer(_serialize, return_type=str, when_used="json"),
]
"""A duration that must be longer than zero (intervals, timeouts, windows)."""
