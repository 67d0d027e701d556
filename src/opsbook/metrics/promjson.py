"""Prometheus's HTTP API JSON, both ways: query results to JSON and JSON back to results.

The query API serves what :func:`encode_result` builds, so Grafana and other Prometheus clients
read opsbook as they read Prometheus; the ``prometheus`` backend reads a remote server's answers
with :func:`decode_result`; ``opsbook query --json`` prints the same shapes. Pure functions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from opsbook.metrics.model import Labels, labels_from_mapping
from opsbook.metrics.query import (
    BackendUnavailable,
    BadQueryRequest,
    Matrix,
    MatrixSeries,
    QueryError,
    QueryResult,
    QuerySyntaxError,
    QueryTimeout,
    QueryValue,
    Sample,
    Scalar,
    String,
    Vector,
)


def format_value(value: float) -> str:
    """A sample value as Prometheus prints it (Go's ``FormatFloat(v, 'f', -1, 64)``).

    Shortest round-trip digits, never an exponent; ``+Inf``, ``-Inf`` and ``NaN`` spelled out.
    """
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value)) if value != 0 or math.copysign(1.0, value) > 0 else "-0"
    text = repr(value)
    if "e" not in text:
        return text
    return np.format_float_positional(value, unique=True, trim="-")


def parse_value(text: str) -> float:
    """The inverse of :func:`format_value` (Go's ParseFloat accepts Inf, +Inf, -Inf, NaN)."""
    try:
        return float(text)
    except ValueError:
        raise QueryError(f"the server sent {text!r} where a sample value was expected") from None


def format_timestamp(t_ms: int) -> float | int:
    """Output timestamps are Unix seconds; whole seconds print without a fraction, like Go."""
    return t_ms // 1000 if t_ms % 1000 == 0 else t_ms / 1000


def labels_json(labels: Labels) -> dict[str, str]:
    return dict(labels)


def encode_value(value: QueryValue) -> dict[str, Any]:
    """``{"resultType": ..., "result": ...}``: the ``data`` of a query response."""
    if isinstance(value, Vector):
        return {
            "resultType": "vector",
            "result": [
                {
                    "metric": labels_json(s.labels),
                    "value": [format_timestamp(s.t_ms), format_value(s.value)],
                }
                for s in value.samples
            ],
        }
    if isinstance(value, Matrix):
        return {
            "resultType": "matrix",
            "result": [
                {
                    "metric": labels_json(series.labels),
                    "values": [
                        [format_timestamp(t), format_value(v)]
                        for t, v in zip(
                            series.timestamps.tolist(), series.values.tolist(), strict=True
                        )
                    ],
                }
                for series in value.series
            ],
        }
    if isinstance(value, Scalar):
        return {
            "resultType": "scalar",
            "result": [format_timestamp(value.t_ms), format_value(value.value)],
        }
    return {"resultType": "string", "result": [format_timestamp(value.t_ms), value.value]}


def success(data: Any, warnings: Sequence[str] = (), infos: Sequence[str] = ()) -> dict[str, Any]:
    """The success envelope; ``warnings``/``infos`` only when there are some, as Prometheus."""
    body: dict[str, Any] = {"status": "success", "data": data}
    if warnings:
        body["warnings"] = list(warnings)
    if infos:
        body["infos"] = list(infos)
    return body


def encode_result(result: QueryResult) -> dict[str, Any]:
    return success(encode_value(result.value), result.warnings, result.infos)


def error(kind: str, message: str) -> dict[str, Any]:
    return {"status": "error", "errorType": kind, "error": message}


# --- decoding (the ``prometheus`` backend) ------------------------------------------------------


def _labels(metric: Mapping[str, str]) -> Labels:
    return labels_from_mapping(metric)


def _t_ms(seconds: float | int | str) -> int:
    return round(float(seconds) * 1000)


def decode_value(data: Mapping[str, Any]) -> QueryValue:
    """A :data:`QueryValue` from a response's ``data`` object."""
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "vector" and isinstance(result, list):
        return Vector(
            [
                Sample(
                    _labels(item["metric"]), _t_ms(item["value"][0]), parse_value(item["value"][1])
                )
                for item in result
            ]
        )
    if kind == "matrix" and isinstance(result, list):
        series = []
        for item in result:
            points = item.get("values", [])
            series.append(
                MatrixSeries(
                    _labels(item["metric"]),
                    np.array([_t_ms(t) for t, _ in points], dtype=np.int64),
                    np.array([parse_value(v) for _, v in points], dtype=np.float64),
                )
            )
        return Matrix(series)
    if kind == "scalar" and isinstance(result, list):
        return Scalar(_t_ms(result[0]), parse_value(result[1]))
    if kind == "string" and isinstance(result, list):
        return String(_t_ms(result[0]), str(result[1]))
    raise QueryError(f"the server answered with an unknown result type {kind!r}")


_ERROR_TYPES: dict[str, type[QueryError]] = {
    "bad_data": BadQueryRequest,
    "timeout": QueryTimeout,
    "canceled": QueryTimeout,
    "unavailable": BackendUnavailable,
}


def decode_error(body: Mapping[str, Any], status_code: int) -> QueryError:
    """The :class:`QueryError` a Prometheus error envelope stands for."""
    kind = str(body.get("errorType", ""))
    message = str(body.get("error", f"HTTP {status_code}"))
    if kind == "bad_data" and "parse error" in message:
        return QuerySyntaxError(message)
    return _ERROR_TYPES.get(kind, QueryError)(message)


# --- request parameters -------------------------------------------------------------------------


def parse_time(text: str, name: str = "time") -> int:
    """A Prometheus API time parameter (Unix seconds, or RFC 3339) in milliseconds."""
    try:
        return round(float(text) * 1000)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadQueryRequest(
            f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp'
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_UNITS_MS["y"] = 365 * _UNITS_MS["d"]
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_DURATION = re.compile(r"(?:\d+(?:ms|s|m|h|d|w|y))+")


def parse_duration(text: str, name: str) -> int:
    """A duration parameter (``15s``, ``1h30m`` or float seconds) in milliseconds."""
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds):
            return round(seconds * 1000)
    if not _DURATION.fullmatch(text):
        raise BadQueryRequest(
            f'invalid parameter "{name}": cannot parse "{text}" to a valid duration'
        )
    return sum(int(n) * _UNITS_MS[unit] for n, unit in _DURATION_PART.findall(text))


__all__ = [
    "decode_error",
    "decode_value",
    "encode_result",
    "encode_value",
    "error",
    "format_timestamp",
    "format_value",
    "parse_duration",
    "parse_time",
    "parse_value",
    "success",
]
