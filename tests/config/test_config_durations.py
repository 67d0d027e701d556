"""Prometheus-style durations: parsing, formatting, and the pydantic field type."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from opsbook.config import Duration, DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("30d", timedelta(days=30)),
        ("1w", timedelta(weeks=1)),
        ("1y", timedelta(days=365)),
        ("500ms", timedelta(milliseconds=500)),
        ("1m30s250ms", timedelta(minutes=1, seconds=30, milliseconds=250)),
        ("0s", timedelta(0)),
        ("90m", timedelta(minutes=90)),
    ],
)
def test_parse_valid(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "30", "0", "soon", "1.5h", "-5m", "5 m", "30S", "1m1h", "1h1h", "ms", "1s500", "5min"],
)
def test_parse_invalid(text: str) -> None:
    with pytest.raises(DurationError, match="must be a duration like 30s, 5m, 1h"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(days=30), "30d"),
        (timedelta(weeks=1), "7d"),
        (timedelta(milliseconds=1500), "1s500ms"),
    ],
)
def test_format(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


@pytest.mark.parametrize("value", [timedelta(seconds=-1), timedelta(microseconds=1500)])
def test_format_rejects_unrepresentable(value: timedelta) -> None:
    with pytest.raises(ValueError):
        format_duration(value)


_MAX_MS = 100 * 365 * 24 * 3600 * 1000


@given(st.integers(min_value=0, max_value=_MAX_MS).map(lambda ms: timedelta(milliseconds=ms)))
def test_formatted_durations_round_trip(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value


_UNITS = [("y", 365 * 86400_000), ("w", 7 * 86400_000), ("d", 86400_000), ("h", 3600_000)]
_UNITS += [("m", 60_000), ("s", 1000), ("ms", 1)]


@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=7, max_size=7))
def test_any_written_duration_parses_to_its_sum(counts: list[int]) -> None:
    # Every unit that is present, largest first: what a person may write.
    parts = [(n, unit, ms) for n, (unit, ms) in zip(counts, _UNITS, strict=True) if n]
    text = "".join(f"{n}{unit}" for n, unit, _ in parts) or "0s"
    expected = timedelta(milliseconds=sum(n * ms for n, _, ms in parts))
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


def test_field_type_parses_and_serialises() -> None:
    adapter = TypeAdapter(Duration)
    assert adapter.validate_python("1h30m") == timedelta(minutes=90)
    assert adapter.dump_json(timedelta(minutes=90)) == b'"1h30m"'


@pytest.mark.parametrize("value", [30, 30.0, True, "soon", None])
def test_field_type_rejects_bare_numbers_and_words(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        TypeAdapter(Duration).validate_python(value)
    assert info.value.errors()[0]["type"] == "duration"
