"""Deterministic benchmark data for benchmarks/metrics.py, written as OpenMetrics with timestamps.

Two datasets, one file each:

    day    10,000 series x 1 day at 15 s (57.6 M samples): request counters, histogram buckets
           and gauges, the shape of a few instrumented services' /metrics.
    month  100 request counters (20 routes x 5 statuses) x 30 days at 15 s (17.3 M samples),
           for the 30-day error-ratio query.

Both files are what `promtool tsdb create-blocks-from openmetrics` and `opsbook import` read, so
Prometheus and opsbook are loaded from the very same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

STEP_S = 15
ROUTES = [f"/api/v1/resource{i:02d}" for i in range(20)]
STATUSES = ["200", "201", "404", "500", "503"]
STATUS_WEIGHTS = np.array([0.80, 0.10, 0.06, 0.03, 0.01])
BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]


@dataclass(frozen=True)
class Family:
    """One metric family: its TYPE line and its series (label text, value rows)."""

    name: str
    type: str
    series: list[str]
    values: npt.NDArray[np.float64]  # shape (len(series), steps)


def _counters(
    rng: np.random.Generator, rates: npt.NDArray[np.float64], steps: int
) -> npt.NDArray[np.float64]:
    increments = rng.poisson(rates[:, None] * STEP_S, size=(len(rates), steps))
    return np.cumsum(increments, axis=1, dtype=np.float64)


def day_families(series: int, steps: int, seed: int = 7) -> list[Family]:
    """``series`` series: 20 % request counters, 28 % histogram series, the rest gauges."""
    rng = np.random.default_rng(seed)
    instances = max(1, series // 1000)
    counter_labels = [
        f'instance="app-{i}:8000",method="{m}",route="{r}",status="{s}"'
        for i in range(instances)
        for r in ROUTES
        for m in ("GET", "POST")
        for s in STATUSES
    ]
    weights = np.tile(STATUS_WEIGHTS, len(counter_labels) // len(STATUSES))
    counters = _counters(rng, 5.0 * weights, steps)

    hist_labels, hist_rows = [], []
    for i in range(instances):
        for r in ROUTES:
            counts = _counters(rng, np.array([10.0]), steps)[0]
            shares = np.sort(rng.uniform(0.05, 1.0, len(BUCKETS) - 1))
            for le, share in zip(BUCKETS, [*shares, 1.0], strict=True):
                hist_labels.append(f'instance="app-{i}:8000",le="{le}",route="{r}"')
                hist_rows.append(np.floor(counts * share))
    hist = np.array(hist_rows)

    n_gauges = max(0, series - len(counter_labels) - len(hist_labels))
    gauge_labels = [f'instance="app-{g % instances}:8000",name="g{g:05d}"' for g in range(n_gauges)]
    walk = np.cumsum(rng.normal(0, 0.5, size=(n_gauges, steps)), axis=1)
    gauges = np.round(50.0 + walk, 2)
    return [
        Family("http_requests", "counter", counter_labels, counters),
        Family("http_request_duration_seconds_bucket", "unknown", hist_labels, hist),
        Family("app_gauge", "gauge", gauge_labels, gauges),
    ]


def month_families(steps: int, seed: int = 11) -> list[Family]:
    rng = np.random.default_rng(seed)
    labels = [f'route="{r}",status="{s}"' for r in ROUTES for s in STATUSES]
    weights = np.tile(STATUS_WEIGHTS, len(ROUTES))
    return [Family("api_requests", "counter", labels, _counters(rng, 5.0 * weights, steps))]


def _lines(family: Family, start_s: int) -> Iterator[str]:
    sample_name = family.name + "_total" if family.type == "counter" else family.name
    yield f"# TYPE {family.name} {family.type}\n"
    steps = family.values.shape[1]
    stamps = [str(start_s + k * STEP_S) for k in range(steps)]
    for labels, row in zip(family.series, family.values, strict=True):
        prefix = f"{sample_name}{{{labels}}} "
        texts = [f"{v:.15g}" for v in row.tolist()]
        yield "".join(f"{prefix}{v} {t}\n" for v, t in zip(texts, stamps, strict=True))


def write_openmetrics(path: Path, families: list[Family], start_s: int) -> int:
    """Write the families with timestamps from ``start_s``; return the number of samples."""
    samples = 0
    tmp = path.with_suffix(".partial")
    with tmp.open("w", encoding="utf-8") as out:
        for family in families:
            for chunk in _lines(family, start_s):
                out.write(chunk)
            samples += family.values.size
        out.write("# EOF\n")
    tmp.replace(path)
    return samples


def scrape_body(series: int, seed: int = 3) -> str:
    """One /metrics body in the Prometheus text format (no timestamps), ``series`` samples."""
    families = day_families(series, steps=1, seed=seed)
    lines = []
    for family in families:
        name = family.name + "_total" if family.type == "counter" else family.name
        lines.append(f"# HELP {family.name} Benchmark family {family.name}.\n")
        lines.append(
            f"# TYPE {family.name} {family.type if family.type != 'unknown' else 'untyped'}\n"
        )
        lines.extend(
            f"{name}{{{labels}}} {row[0]:.15g}\n"
            for labels, row in zip(family.series, family.values, strict=True)
        )
    return "".join(lines)
