"""Parsing a /metrics body: opsbook's exposition parser against ``prometheus_client.parser``.

Run: ``.venv/bin/python benchmarks/exposition_parse.py [--samples N] [--rounds R]``

The body is what a busy FastAPI service exposes: request counters and latency histograms per
method, route and status (3-5 labels), plus a few process gauges, about 10,000 samples. Three
parsers read it: opsbook with a fresh :class:`SeriesCache` (the first scrape of a target),
opsbook with a warm cache (every later scrape), and prometheus_client's text parser.
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
from collections.abc import Callable

BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
METHODS = ["GET", "POST", "PUT", "DELETE"]
STATUSES = ["200", "201", "400", "404", "500"]


def scrape_body(samples: int, seed: int = 7) -> str:
    """A text-format body of about ``samples`` samples (counters, histograms, gauges)."""
    rng = random.Random(seed)
    # Each (method, route, status) gives 1 counter + 14 histogram samples.
    routes_needed = max(1, samples // (len(METHODS) * len(STATUSES) * (1 + len(BUCKETS) + 2)))
    routes = [f"/api/v1/{noun}/{{id}}/items" for noun in _nouns(routes_needed)]
    combos = list(itertools.product(METHODS, routes, STATUSES))
    out = [
        "# HELP process_resident_memory_bytes Resident memory size in bytes.",
        "# TYPE process_resident_memory_bytes gauge",
        f"process_resident_memory_bytes {rng.randint(10**7, 10**9)}",
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
        "# TYPE process_cpu_seconds_total counter",
        f"process_cpu_seconds_total {rng.uniform(1, 10**4):.2f}",
        "# HELP http_requests_total Requests handled, by method, route and status.",
        "# TYPE http_requests_total counter",
    ]
    for method, route, status in combos:
        labels = f'app="shop",method="{method}",route="{route}",status="{status}"'
        out.append(f"http_requests_total{{{labels}}} {rng.randint(0, 10**6)}.0")
    out.append("# HELP http_request_duration_seconds Request latency.")
    out.append("# TYPE http_request_duration_seconds histogram")
    for method, route, status in combos:
        labels = f'app="shop",method="{method}",route="{route}",status="{status}"'
        count = 0
        for bound in BUCKETS:
            count += rng.randint(0, 1000)
            out.append(f'http_request_duration_seconds_bucket{{{labels},le="{bound}"}} {count}.0')
        out.append(f"http_request_duration_seconds_sum{{{labels}}} {rng.uniform(0, 10**5):.3f}")
        out.append(f"http_request_duration_seconds_count{{{labels}}} {count}.0")
    return "\n".join(out) + "\n"


def _nouns(count: int) -> list[str]:
    base = ["users", "orders", "invoices", "carts", "products", "reviews", "payments", "tickets"]
    return [f"{base[i % len(base)]}{i // len(base) or ''}" for i in range(count)]


def best_of(rounds: int, fn: Callable[[], int]) -> tuple[int, float]:
    samples = fn()  # warm-up, and the sample count
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return samples, min(times)


def main() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from opsbook.metrics.exposition import SeriesCache, parse_exposition

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    text = scrape_body(args.samples)
    body = text.encode()
    content_type = "text/plain; version=0.0.4"

    def opsbook_cold() -> int:
        return len(parse_exposition(body, content_type, cache=SeriesCache()).values)

    warm = SeriesCache()

    def opsbook_warm() -> int:
        return len(parse_exposition(body, content_type, cache=warm).values)

    def prometheus_client() -> int:
        return sum(len(family.samples) for family in text_string_to_metric_families(text))

    results: dict[str, tuple[int, float]] = {}
    for name, fn in (
        ("opsbook, cold cache", opsbook_cold),
        ("opsbook, warm cache", opsbook_warm),
        ("prometheus_client", prometheus_client),
    ):
        results[name] = best_of(args.rounds, fn)
    counts = {samples for samples, _ in results.values()}
    if len(counts) != 1:
        raise SystemExit(f"the parsers disagree on the number of samples: {results}")
    samples = counts.pop()
    peer = samples / results["prometheus_client"][1]
    print(f"body: {samples:,} samples, {len(body):,} bytes; best of {args.rounds} rounds")
    print(f"{'parser':<22}{'ms':>9}{'samples/s':>14}{'vs prometheus_client':>23}")
    for name, (_, seconds) in results.items():
        rate = samples / seconds
        print(f"{name:<22}{seconds * 1000:>9.2f}{rate:>14,.0f}{rate / peer:>22.1f}x")


if __name__ == "__main__":
    main()
