"""Prometheus API JSON: value formatting, parameters, and the round trip encode → decode."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsbook.metrics.promjson import (
    decode_error,
    decode_value,
    encode_value,
    format_timestamp,
    format_value,
    parse_duration,
    parse_time,
)
from opsbook.metrics.query import (
    BackendUnavailable,
    BadQueryRequest,
    Matrix,
    MatrixSeries,
    QueryError,
    QuerySyntaxError,
    QueryTimeout,
    Sample,
    Scalar,
    String,
    Vector,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (-3.0, "-3"),
        (0.1, "0.1"),
        (1e-7, "0.0000001"),
        (1e21, "1000000000000000000000"),
        (123456.789, "123456.789"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
        (-0.0, "-0"),
    ],
)
def test_values_print_as_prometheus_prints_them(value: float, text: str) -> None:
    assert format_value(value) == text


@given(st.floats(allow_nan=False))
def test_formatted_values_round_trip_exactly(value: float) -> None:
    text = format_value(value)
    assert "e" not in text.lower() or text in {"+Inf", "-Inf"}
    assert float(text) == value


def test_timestamps_are_unix_seconds() -> None:
    assert format_timestamp(1_435_781_451_781) == 1435781451.781
    assert format_timestamp(1_435_781_451_000) == 1435781451


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1435781451.781", 1_435_781_451_781),
        ("1435781451", 1_435_781_451_000),
        ("2015-07-01T20:10:51.781Z", 1_435_781_451_781),
        ("2015-07-01T22:10:51.781+02:00", 1_435_781_451_781),
    ],
)
def test_times_parse_from_unix_seconds_and_rfc3339(text: str, ms: int) -> None:
    assert parse_time(text) == ms


def test_a_bad_time_is_a_bad_data_error_naming_the_parameter() -> None:
    with pytest.raises(BadQueryRequest, match=r'invalid parameter "start".*"yesterday"'):
        parse_time("yesterday", "start")


@pytest.mark.parametrize(
    ("text", "ms"), [("15s", 15_000), ("1h30m", 5_400_000), ("0.5", 500), ("100ms", 100)]
)
def test_durations_parse_from_units_and_float_seconds(text: str, ms: int) -> None:
    assert parse_duration(text, "step") == ms


@pytest.mark.parametrize("text", ["", "5x", "m5", "1h 30m", "inf"])
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(BadQueryRequest, match='invalid parameter "step"'):
        parse_duration(text, "step")


def test_every_result_type_survives_encode_then_decode() -> None:
    labels = (("__name__", "up"), ("job", "api"))
    values = [
        Vector([Sample(labels, 1_000, 1.0), Sample((("job", "db"),), 1_000, math.inf)]),
        Matrix(
            [
                MatrixSeries(
                    labels,
                    np.array([1_000, 16_000], dtype=np.int64),
                    np.array([0.25, -2.0]),
                )
            ]
        ),
        Scalar(2_500, 0.5),
        String(3_000, "hello"),
    ]
    for value in values:
        decoded = decode_value(encode_value(value))
        if isinstance(value, Matrix):
            assert isinstance(decoded, Matrix)
            (got,) = decoded.series
            assert got.labels == labels
            assert got.timestamps.tolist() == [1_000, 16_000]
            assert got.values.tolist() == [0.25, -2.0]
        else:
            assert decoded == value


def test_vector_json_has_prometheus_shape() -> None:
    data = encode_value(Vector([Sample((("__name__", "up"), ("job", "api")), 1_500, 1.0)]))
    assert data == {
        "resultType": "vector",
        "result": [{"metric": {"__name__": "up", "job": "api"}, "value": [1.5, "1"]}],
    }


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"errorType": "bad_data", "error": "1:5: parse error: unexpected end"}, QuerySyntaxError),
        ({"errorType": "bad_data", "error": "invalid time"}, BadQueryRequest),
        ({"errorType": "timeout", "error": "query timed out"}, QueryTimeout),
        ({"errorType": "unavailable", "error": "down"}, BackendUnavailable),
        ({"errorType": "execution", "error": "too many samples"}, QueryError),
    ],
)
def test_remote_errors_map_to_query_errors(body: dict[str, str], kind: type[QueryError]) -> None:
    exc = decode_error({"status": "error", **body}, 400)
    assert type(exc) is kind
    assert exc.message == body["error"]
