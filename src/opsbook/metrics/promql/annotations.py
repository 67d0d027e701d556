"""Prometheus's query annotations (warnings and infos) that several functions raise."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from opsbook.metrics.promql.values import Floats

Annotate = Callable[[str, str], None]
"""``annotate(kind, message)`` with kind "warning" or "info"."""


def format_g(value: float) -> str:
    """A float as Go's ``%g`` prints it in Prometheus's messages."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:g}"


def check_quantiles(q: Floats, annotate: Annotate) -> None:
    """Warn once per out-of-range quantile parameter, as Prometheus does."""
    for value in np.unique(q):
        if not 0 <= value <= 1:
            annotate(
                "warning",
                "PromQL warning: quantile value should be between 0 and 1, "
                f"got {format_g(float(value))}",
            )
