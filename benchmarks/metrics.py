"""opsbook's metrics engine and a real Prometheus, side by side in one run, on the same data.

    .venv/bin/python benchmarks/metrics.py            # the full run (about 15 minutes)
    .venv/bin/python benchmarks/metrics.py --series 1000 --hours 2 --month-days 3   # a quick one

Three parts, each printing opsbook, the peer and their ratio:

(a) parsing a /metrics body: opsbook's exposition parser vs ``prometheus_client.parser``;
(b) ingest of 10,000 series x 1 day at 15 s from one OpenMetrics file: ``opsbook import``'s code
    path into the embedded store vs ``promtool tsdb create-blocks-from openmetrics``; bytes per
    sample on disk of the DuckDB file vs the persisted Prometheus blocks;
(c) query latency over HTTP, both servers pinned to the same core and queried from another:
    ``sum by (route) (rate(http_requests_total[5m]))`` on the day data, and a 30-day error ratio
    on 100 counters x 30 days.

Data files are generated once per size into --workdir (default benchmarks/results/metrics-data,
git-ignored) and reused by later runs. Targets (issue 3): parsing >= 5x prometheus_client,
<= 4 bytes/sample, the instant rate query within 3x Prometheus, the 30-day ratio no slower.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.metrics_data import (  # noqa: E402
    STEP_S,
    day_families,
    month_families,
    scrape_body,
    write_openmetrics,
)
from tests.metrics.prometheus_server import (  # noqa: E402
    blocks_size,
    create_blocks,
    running_prometheus,
)

RATE_QUERY = "sum by (route) (rate(http_requests_total[5m]))"
RATIO_QUERY = (
    'sum(rate(api_requests_total{status=~"5.."}[30d])) / sum(rate(api_requests_total[30d]))'
)
SERVER_CPU = 0
CLIENT_CPU = 1


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(0, {cpu})


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "n/a"


# --- (a) parsing ------------------------------------------------------------------------------


def bench_parse(series: int, rounds: int) -> dict[str, Any]:
    from prometheus_client.parser import text_string_to_metric_families

    from opsbook.metrics.exposition import SeriesCache, parse_exposition

    body = scrape_body(series).encode()
    text = body.decode()

    def ours_cold() -> int:
        return len(parse_exposition(body, "text/plain; version=0.0.4").values)

    cache = SeriesCache()

    def ours_warm() -> int:
        return len(parse_exposition(body, "text/plain; version=0.0.4", cache=cache).values)

    def theirs() -> int:
        return sum(len(f.samples) for f in text_string_to_metric_families(text))

    results = {}
    for name, fn in (
        ("opsbook (cold)", ours_cold),
        ("opsbook (warm)", ours_warm),
        ("prometheus_client", theirs),
    ):
        samples = fn()  # warm-up, and the count
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        best = min(times)
        results[name] = {"samples": samples, "seconds": best, "samples_per_s": samples / best}
    peer = results["prometheus_client"]["samples_per_s"]
    print(f"\n(a) parsing a /metrics body of {series:,} samples (best of {rounds})")
    print(f"{'parser':<22}{'samples/s':>14}{'vs prometheus_client':>24}")
    for name, row in results.items():
        print(f"{name:<22}{row['samples_per_s']:>14,.0f}{_ratio(row['samples_per_s'], peer):>24}")
    return results


# --- data -------------------------------------------------------------------------------------


def dataset(workdir: Path, name: str, families: Callable[[], list[Any]], start_s: int) -> Path:
    path = workdir / f"{name}.om"
    if path.exists():
        return path
    started = time.perf_counter()
    print(f"writing {path} ...", flush=True)
    samples = write_openmetrics(path, families(), start_s)
    size = path.stat().st_size
    took = time.perf_counter() - started
    print(f"  {samples:,} samples, {size / 1e9:.2f} GB in {took:.0f} s", flush=True)
    return path


# --- (b) ingest -------------------------------------------------------------------------------


def ingest_opsbook(data: Path, store_path: Path) -> dict[str, Any]:
    from opsbook.metrics.embedded import EmbeddedStore
    from opsbook.metrics.importer import import_openmetrics

    if store_path.exists():
        store_path.unlink()
    started = time.perf_counter()
    with EmbeddedStore.open(store_path, retention=None) as store:
        report = import_openmetrics(data, store)
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in store_path.parent.glob(store_path.name + "*"))
    return {
        "samples": report.samples,
        "seconds": seconds,
        "samples_per_s": report.samples / seconds,
        "bytes": size,
        "bytes_per_sample": size / report.samples,
    }


def ingest_prometheus(data: Path, blocks: Path, samples: int) -> dict[str, Any]:
    if blocks.exists():
        shutil.rmtree(blocks)
    seconds = create_blocks(data, blocks)
    size = blocks_size(blocks)
    return {
        "samples": samples,
        "seconds": seconds,
        "samples_per_s": samples / seconds,
        "bytes": size,
        "bytes_per_sample": size / samples,
    }


def print_ingest(label: str, ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    print(f"\n(b) ingest: {label}")
    print(f"{'':<28}{'samples/s':>14}{'bytes/sample':>14}{'on disk':>12}")
    for name, row in (("opsbook import (DuckDB)", ours), ("promtool create-blocks", theirs)):
        print(
            f"{name:<28}{row['samples_per_s']:>14,.0f}{row['bytes_per_sample']:>14.2f}"
            f"{row['bytes'] / 1e6:>10.1f}MB"
        )
    print(
        f"{'opsbook / Prometheus':<28}{_ratio(ours['samples_per_s'], theirs['samples_per_s']):>14}"
        f"{_ratio(ours['bytes_per_sample'], theirs['bytes_per_sample']):>14}"
    )


# --- (c) query latency ------------------------------------------------------------------------


@contextmanager
def opsbook_server(store_path: Path) -> Iterator[str]:
    """opsbook's query API over the store, in its own process pinned to SERVER_CPU."""
    from tests.conftest import free_port

    port = free_port()
    command = [sys.executable, __file__, "serve", str(store_path), str(port)]
    if shutil.which("taskset") and (os.cpu_count() or 1) > SERVER_CPU:
        command = ["taskset", "-c", str(SERVER_CPU), *command]
    process = subprocess.Popen(command, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/api/v1/status/buildinfo", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the opsbook query server did not start")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def serve(store_path: str, port: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    from opsbook.metrics.backends import EmbeddedBackend
    from opsbook.metrics.embedded import EmbeddedStore
    from opsbook.metrics.views import query_api_router

    store = EmbeddedStore.open(Path(store_path), retention=None)
    app = FastAPI()
    app.include_router(query_api_router(EmbeddedBackend(store)))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def time_query(url: str, expr: str, at_s: float, rounds: int) -> dict[str, Any]:
    """Latency of one instant query over HTTP: median and p90 after warm-up."""
    times = []
    with httpx.Client(base_url=url, timeout=300) as client:

        def once() -> tuple[float, Any]:
            started = time.perf_counter()
            response = client.post("/api/v1/query", data={"query": expr, "time": f"{at_s:.3f}"})
            took = time.perf_counter() - started
            body = response.json()
            if body.get("status") != "success":
                raise RuntimeError(f"{url}: {expr}: {body}")
            return took, body["data"]["result"]

        _, result = once()
        for _ in range(3):
            once()
        for _ in range(rounds):
            times.append(once()[0])
    times.sort()
    return {
        "median_s": statistics.median(times),
        "p90_s": times[int(len(times) * 0.9) - 1],
        "result_series": len(result) if isinstance(result, list) else 1,
        "result": result,
    }


def compare_query(
    label: str, expr: str, at_s: float, store_path: Path, blocks: Path, rounds: int
) -> dict[str, Any]:
    with opsbook_server(store_path) as url:
        ours = time_query(url, expr, at_s, rounds)
    with running_prometheus(blocks, cpu=SERVER_CPU) as url:
        time.sleep(5)  # let start-up work (head replay, block loading) settle
        theirs = time_query(url, expr, at_s, rounds)
    same = _same_result(ours.pop("result"), theirs.pop("result"))
    print(f"\n(c) {label}: {expr}")
    print(f"{'':<14}{'median ms':>12}{'p90 ms':>10}{'series':>8}")
    for name, row in (("opsbook", ours), ("Prometheus", theirs)):
        print(
            f"{name:<14}{row['median_s'] * 1e3:>12.1f}{row['p90_s'] * 1e3:>10.1f}"
            f"{row['result_series']:>8}"
        )
    ratio = _ratio(ours["median_s"], theirs["median_s"])
    print(f"opsbook / Prometheus: {ratio} (median); results agree: {same}")
    return {"opsbook": ours, "prometheus": theirs, "results_agree": same}


def _same_result(a: Any, b: Any) -> bool:
    def rows(result: Any) -> dict[str, float]:
        return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in result}

    ra, rb = rows(a), rows(b)
    return ra.keys() == rb.keys() and all(
        abs(ra[k] - rb[k]) <= 1e-9 * max(1.0, abs(rb[k])) for k in ra
    )


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--month-days", type=int, default=30)
    parser.add_argument("--parse-rounds", type=int, default=7)
    parser.add_argument("--query-rounds", type=int, default=30)
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks/results/metrics-data")
    parser.add_argument("--only", default="parse,ingest,query", help="parts to run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    _pin(CLIENT_CPU)
    print(
        f"opsbook metrics benchmark — {time.strftime('%Y-%m-%d')}, "
        f"Python {platform.python_version()},"
        f" {os.cpu_count()} cores; Prometheus: {_prometheus_version()}"
    )
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    if "parse" in parts:
        results["parse"] = bench_parse(args.series, args.parse_rounds)

    work = args.workdir / f"s{args.series}-h{args.hours}-d{args.month_days}"
    work.mkdir(parents=True, exist_ok=True)
    now_s = int(time.time()) // 3600 * 3600
    day_steps = args.hours * 3600 // STEP_S
    month_steps = args.month_days * 86400 // STEP_S
    day_start = now_s - args.hours * 3600
    month_start = now_s - args.month_days * 86400
    if "ingest" in parts or "query" in parts:
        marker = work / "start.json"
        if marker.exists():
            day_start, month_start = json.loads(marker.read_text())
        else:
            marker.write_text(json.dumps([day_start, month_start]))
        day = dataset(work, "day", lambda: day_families(args.series, day_steps), day_start)
        month = dataset(work, "month", lambda: month_families(month_steps), month_start)
    if "ingest" in parts:
        ours = ingest_opsbook(day, work / "day.duckdb")
        theirs = ingest_prometheus(day, work / "day-blocks", ours["samples"])
        print_ingest(f"{args.series:,} series x {args.hours} h at {STEP_S} s", ours, theirs)
        results["ingest_day"] = {"opsbook": ours, "prometheus": theirs}
        ours = ingest_opsbook(month, work / "month.duckdb")
        theirs = ingest_prometheus(month, work / "month-blocks", ours["samples"])
        print_ingest(f"100 series x {args.month_days} days at {STEP_S} s", ours, theirs)
        results["ingest_month"] = {"opsbook": ours, "prometheus": theirs}
    if "query" in parts:
        day_end = day_start + day_steps * STEP_S - STEP_S
        month_end = month_start + month_steps * STEP_S - STEP_S
        results["rate_query"] = compare_query(
            f"instant rate over {args.series:,} series",
            RATE_QUERY,
            day_end + 1,
            work / "day.duckdb",
            work / "day-blocks",
            args.query_rounds,
        )
        results["ratio_query"] = compare_query(
            f"{args.month_days}-day error ratio",
            RATIO_QUERY.replace("30d", f"{args.month_days}d"),
            month_end + 1,
            work / "month.duckdb",
            work / "month-blocks",
            args.query_rounds,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def _prometheus_version() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        return "not installed"
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).splitlines()[0] if (done.stdout or done.stderr) else "?"


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        main()
