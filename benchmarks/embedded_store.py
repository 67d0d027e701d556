"""Storage-side numbers of the embedded metrics store, on the datasets of metrics_data.py.

    .venv/bin/python benchmarks/embedded_store.py [--series 10000] [--dir /tmp/opsbook-bench]

Measures, without the PromQL engine on top:

- bulk ingest (``append_series`` + flushes) of ``day_families(series, 5760)``, samples/s;
- bytes per sample of the DuckDB file after closing (series index and rollups included);
- ``select`` of ``http_requests_total`` (2,000 series at 10,000) over the last 6 minutes;
- ingest of ``month_families`` (100 counters x 30 days) and ``summarize`` over the 30 days.

The datasets end at the current time, as an import of recent history would.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.metrics_data import STEP_S, Family, day_families, month_families
from opsbook.metrics.embedded import EmbeddedStore
from opsbook.metrics.model import Labels, Matcher, labels_from_mapping

_LABEL = re.compile(r'(\w+)="([^"]*)"')


def family_labels(family: Family) -> list[Labels]:
    name = family.name + "_total" if family.type == "counter" else family.name
    return [
        labels_from_mapping({"__name__": name, **dict(_LABEL.findall(text))})
        for text in family.series
    ]


def ingest(path: Path, families: list[Family], end_s: int) -> tuple[int, float]:
    steps = families[0].values.shape[1]
    start_ms = (end_s - (steps - 1) * STEP_S) * 1000
    timestamps = start_ms + np.arange(steps, dtype=np.int64) * STEP_S * 1000
    samples = 0
    began = time.perf_counter()
    store = EmbeddedStore.open(path)
    for family in families:
        for labels, row in zip(family_labels(family), family.values, strict=True):
            store.append_series(labels, timestamps, row)
            samples += len(row)
    store.close()
    return samples, time.perf_counter() - began


def median_ms(call: Callable[[], object], repeat: int = 30) -> float:
    call()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/opsbook-bench"))
    args = parser.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    end_s = int(time.time())

    day = args.dir / "day.duckdb"
    samples, seconds = ingest(day, day_families(args.series, 5760), end_s)
    size = day.stat().st_size
    print(
        f"day: {samples:,} samples ingested in {seconds:.1f} s = {samples / seconds / 1e6:.2f} M/s"
    )
    print(f"day: {size:,} bytes on disk = {size / samples:.2f} bytes/sample")
    with EmbeddedStore.open(day) as store:
        matchers = [Matcher.equal("__name__", "http_requests_total")]
        end_ms = end_s * 1000
        found = store.select(matchers, end_ms - 360_000, end_ms)
        took = median_ms(lambda: store.select(matchers, end_ms - 360_000, end_ms))
        print(f"select: {len(found)} series x last 6 min in {took:.1f} ms (median)")
        day_ms = median_ms(lambda: store.summarize(matchers, end_ms - 86_400_000, end_ms), 10)
        print(f"summarize: {len(found)} series x 1 day in {day_ms:.1f} ms (median)")

    month = args.dir / "month.duckdb"
    samples, seconds = ingest(month, month_families(30 * 5760), end_s)
    size = month.stat().st_size
    print(
        f"month: {samples:,} samples in {seconds:.1f} s = {samples / seconds / 1e6:.2f} M/s, "
        f"{size / samples:.2f} bytes/sample"
    )
    with EmbeddedStore.open(month) as store:
        matchers = [Matcher.equal("__name__", "api_requests_total")]
        end_ms = end_s * 1000
        start_ms = end_ms - 30 * 86_400_000
        found = store.summarize(matchers, start_ms, end_ms)
        took = median_ms(lambda: store.summarize(matchers, start_ms, end_ms), 10)
        print(f"summarize: {len(found)} series x 30 days in {took:.1f} ms (median)")
    shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
