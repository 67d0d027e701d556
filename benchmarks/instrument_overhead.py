"""What `opsbook.instrument` adds to each request, next to the two usual alternatives.

One small FastAPI app (`GET /items/{item_id}` returning a small JSON dict) is served five ways:

    bare                 the app as written
    opsbook_metrics      opsbook.instrument(..., request_logging=False, configure_logs=False)
    opsbook_full         opsbook.instrument(..., log_file=<tmp>): metrics + request id + JSON log
    instrumentator       prometheus-fastapi-instrumentator: Instrumentator().instrument().expose()
    starlette_exporter   starlette-exporter: PrometheusMiddleware + handle_metrics at /metrics

and measured two ways:

    A. in-process: the ASGI app is awaited directly (prebuilt scope, one http.request message,
       no-op send), variants interleaved round-robin over several rounds, median per variant.
    B. wrk on loopback: each variant in its own uvicorn process on 127.0.0.1, wrk runs
       interleaved round-robin; added time per request = 1e6/rps_variant - 1e6/rps_bare.

Each instrumented variant's /metrics is scraped afterwards and its request counter checked
against the number of requests sent, so no variant wins by not recording anything.

Exit status: 0 whether the targets pass or fail (this is a report); 2 when a variant did not
record the requests it was sent (the comparison would be meaningless).

    .venv/bin/python benchmarks/instrument_overhead.py [--requests N] [--rounds N]
        [--wrk-duration S] [--wrk-rounds N] [--no-wrk] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

BARE = "bare"
OPSBOOK_METRICS = "opsbook_metrics"
OPSBOOK_FULL = "opsbook_full"
INSTRUMENTATOR = "instrumentator"
STARLETTE_EXPORTER = "starlette_exporter"
VARIANTS: tuple[str, ...] = (
    BARE,
    OPSBOOK_METRICS,
    OPSBOOK_FULL,
    INSTRUMENTATOR,
    STARLETTE_EXPORTER,
)
LABELS = {
    BARE: "bare",
    OPSBOOK_METRICS: "opsbook metrics only",
    OPSBOOK_FULL: "opsbook full",
    INSTRUMENTATOR: "prometheus-fastapi-instrumentator",
    STARLETTE_EXPORTER: "starlette-exporter",
}
# Which counter sample and which label holds the route template, per instrumented variant.
REQUEST_COUNTERS: dict[str, tuple[str, str]] = {
    OPSBOOK_METRICS: ("http_requests_total", "route"),
    OPSBOOK_FULL: ("http_requests_total", "route"),
    INSTRUMENTATOR: ("http_requests_total", "handler"),
    STARLETTE_EXPORTER: ("starlette_requests_total", "path"),
}
ROUTE_TEMPLATE = "/items/{item_id}"
REQUEST_PATH = "/items/42"
REQUEST_QUERY = "q=books"
ACCESS_LOG_NAME = "access.log"

# Environment of the uvicorn subprocesses: which variant `create_app` builds, where it logs.
ENV_VARIANT = "OPSBOOK_BENCH_VARIANT"
ENV_LOG_DIR = "OPSBOOK_BENCH_LOG_DIR"

# Ratio of the added time per request, opsbook / prometheus-fastapi-instrumentator.
TARGETS: tuple[tuple[str, str, float], ...] = (
    (OPSBOOK_METRICS, "opsbook metrics-only adds <= 0.5x what instrumentator adds", 0.5),
    (OPSBOOK_FULL, "opsbook full adds <= 1.0x what instrumentator adds", 1.0),
)


# --------------------------------------------------------------------------------------------
# The app, five ways
# --------------------------------------------------------------------------------------------


def base_app() -> Any:
    """A small, realistic FastAPI service: a few routes, a typed path param, a JSON body."""
    from fastapi import FastAPI
    from pydantic import BaseModel

    class Item(BaseModel):
        name: str
        price: float

    app = FastAPI(title="bench")

    @app.get("/items")
    async def list_items(limit: int = 10) -> list[dict[str, Any]]:
        return [{"item_id": i, "name": f"item-{i}"} for i in range(limit)]

    @app.get("/items/{item_id}")
    async def read_item(item_id: int, q: str | None = None) -> dict[str, Any]:
        return {"item_id": item_id, "name": f"item-{item_id}", "price": 9.99, "q": q}

    @app.post("/items")
    async def create_item(item: Item) -> dict[str, Any]:
        return {"item_id": 1, **item.model_dump()}

    @app.get("/users/{user_id}")
    async def read_user(user_id: int) -> dict[str, Any]:
        return {"user_id": user_id}

    return app


def build_app(variant: str, log_dir: Path) -> Any:
    """A fresh app object for `variant`, with its own CollectorRegistry where the library has one.

    starlette-exporter always uses the global REGISTRY (and caches its metric objects on the
    middleware class), so build it at most once per process: the wrk servers each run in their
    own process and the in-process driver builds one of each.
    """
    from prometheus_client import CollectorRegistry

    app = base_app()
    if variant == BARE:
        return app
    if variant == OPSBOOK_METRICS:
        import opsbook.instrument

        return opsbook.instrument(
            app,
            service="bench",
            version="1",
            registry=CollectorRegistry(),
            request_logging=False,
            configure_logs=False,
        )
    if variant == OPSBOOK_FULL:
        import opsbook.instrument

        return opsbook.instrument(
            app,
            service="bench",
            version="1",
            registry=CollectorRegistry(),
            log_file=str(log_dir / ACCESS_LOG_NAME),
        )
    if variant == INSTRUMENTATOR:
        from prometheus_fastapi_instrumentator import Instrumentator

        Instrumentator(registry=CollectorRegistry()).instrument(app).expose(app)
        return app
    if variant == STARLETTE_EXPORTER:
        from starlette_exporter import PrometheusMiddleware, handle_metrics

        app.add_middleware(PrometheusMiddleware)
        app.add_route("/metrics", handle_metrics)
        return app
    raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")


def create_app() -> Any:
    """uvicorn factory (`instrument_overhead:create_app --factory`) for the wrk servers."""
    return build_app(os.environ[ENV_VARIANT], Path(os.environ[ENV_LOG_DIR]))


# --------------------------------------------------------------------------------------------
# Verification: every instrumented variant counted the requests it was sent
# --------------------------------------------------------------------------------------------


def counted_requests(variant: str, exposition: str) -> float:
    """The variant's request counter for the benchmarked route, summed over method/status."""
    from prometheus_client.parser import text_string_to_metric_families

    sample_name, route_label = REQUEST_COUNTERS[variant]
    total = 0.0
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == sample_name and sample.labels.get(route_label) == ROUTE_TEMPLATE:
                total += sample.value
    return total


def logged_requests(log_dir: Path) -> int:
    """Access-log lines opsbook full wrote for the benchmarked route."""
    path = log_dir / ACCESS_LOG_NAME
    if not path.exists():
        return 0
    count = 0
    with path.open("rb") as lines:
        for line in lines:
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if record.get("message") == "request" and record.get("route") == ROUTE_TEMPLATE:
                    count += 1
    return count


@dataclass
class Check:
    measurement: str
    variant: str
    what: str
    expected: float
    observed: float
    exact: bool

    @property
    def ok(self) -> bool:
        if self.exact:
            return self.observed == self.expected
        return self.expected > 0 and self.observed >= self.expected

    def line(self) -> str:
        relation = "==" if self.exact else ">="
        verdict = "ok  " if self.ok else "FAIL"
        return (
            f"  verify {verdict} [{self.measurement}] {LABELS[self.variant]}: {self.what} "
            f"{self.observed:.0f} (want {relation} {self.expected:.0f})"
        )


# --------------------------------------------------------------------------------------------
# A. In-process ASGI driver
# --------------------------------------------------------------------------------------------

BASE_SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": REQUEST_PATH,
    "raw_path": REQUEST_PATH.encode(),
    "query_string": REQUEST_QUERY.encode(),
    "root_path": "",
    "headers": [
        (b"host", b"127.0.0.1:8000"),
        (b"user-agent", b"bench/1.0"),
        (b"accept", b"*/*"),
    ],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}
_REQUEST_MESSAGE: dict[str, Any] = {"type": "http.request", "body": b"", "more_body": False}


async def _receive() -> Message:
    return _REQUEST_MESSAGE


async def _discard(message: Message) -> None:
    return None


async def asgi_get(app: ASGIApp, path: str, query: str = "") -> tuple[int, bytes]:
    """One request through the ASGI app, capturing status and body."""
    scope = {
        **BASE_SCOPE,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
    }
    status = 0
    body = bytearray()

    async def capture(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(scope, _receive, capture)
    return status, bytes(body)


async def drive(app: ASGIApp, requests: int) -> int:
    """Nanoseconds for `requests` sequential requests (each with its own copy of the scope)."""
    base = BASE_SCOPE
    receive = _receive
    send = _discard
    started = time.perf_counter_ns()
    for _ in range(requests):
        await app(dict(base), receive, send)
    return time.perf_counter_ns() - started


@dataclass
class InProcessResult:
    requests_per_round: int
    rounds: int
    warmup: int
    per_round_us: dict[str, list[float]] = field(default_factory=dict)
    median_us: dict[str, float] = field(default_factory=dict)


async def run_in_process(
    apps: dict[str, ASGIApp], requests: int, rounds: int, warmup: int
) -> InProcessResult:
    result = InProcessResult(requests_per_round=requests, rounds=rounds, warmup=warmup)
    for variant, app in apps.items():
        status, body = await asgi_get(app, REQUEST_PATH, REQUEST_QUERY)
        if status != 200:
            raise RuntimeError(f"{variant}: GET {REQUEST_PATH} answered {status}: {body[:200]!r}")
        await drive(app, warmup - 1)
        result.per_round_us[variant] = []
    names = list(apps)
    for round_no in range(rounds):
        order = names[round_no % len(names) :] + names[: round_no % len(names)]
        for variant in order:
            gc.collect()
            elapsed_ns = await drive(apps[variant], requests)
            result.per_round_us[variant].append(elapsed_ns / requests / 1000)
        summary = "  ".join(
            f"{v}={result.per_round_us[v][-1]:.1f}" for v in names if result.per_round_us[v]
        )
        print(f"  round {round_no + 1}/{rounds} (µs/request): {summary}", flush=True)
    result.median_us = {v: statistics.median(us) for v, us in result.per_round_us.items()}
    return result


async def verify_in_process(apps: dict[str, ASGIApp], expected: int, log_dir: Path) -> list[Check]:
    checks = []
    for variant in REQUEST_COUNTERS:
        if variant not in apps:
            continue
        status, body = await asgi_get(apps[variant], "/metrics")
        observed = counted_requests(variant, body.decode()) if status == 200 else -1
        checks.append(
            Check("in-process", variant, "request counter", expected, observed, exact=True)
        )
    if OPSBOOK_FULL in apps:
        checks.append(
            Check(
                "in-process",
                OPSBOOK_FULL,
                "access-log lines",
                expected,
                logged_requests(log_dir),
                exact=True,
            )
        )
    return checks


def in_process(
    requests: int, rounds: int, warmup: int, log_dir: Path
) -> tuple[InProcessResult, list[Check]]:
    log_dir.mkdir(parents=True, exist_ok=True)
    apps = {variant: build_app(variant, log_dir) for variant in VARIANTS}

    async def main() -> tuple[InProcessResult, list[Check]]:
        result = await run_in_process(apps, requests, rounds, warmup)
        checks = await verify_in_process(apps, warmup + rounds * requests, log_dir)
        return result, checks

    return _event_loop_runner()(main())


def _event_loop_runner() -> Callable[[Any], Any]:
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        return uvloop.run  # type: ignore[no-any-return]
    return asyncio.run


# --------------------------------------------------------------------------------------------
# B. wrk against uvicorn on loopback
# --------------------------------------------------------------------------------------------

HOST = "127.0.0.1"
WRK_THREADS = 1
WRK_CONNECTIONS = 16
WRK_WARMUP_S = 1
SERVER_START_TIMEOUT_S = 30.0


@dataclass
class WrkRun:
    requests: int
    duration_s: float
    rps: float
    latency_avg_ms: float
    latency_p50_ms: float
    latency_p99_ms: float
    errors: int  # socket errors + non-2xx/3xx responses


@dataclass
class WrkResult:
    duration_s: int
    rounds: int
    connections: int
    threads: int
    runs: dict[str, list[WrkRun]] = field(default_factory=dict)
    median_rps: dict[str, float] = field(default_factory=dict)
    median_us: dict[str, float] = field(default_factory=dict)
    median_p50_ms: dict[str, float] = field(default_factory=dict)
    median_p99_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class Server:
    variant: str
    port: int
    process: subprocess.Popen[bytes]
    log_dir: Path
    stderr_path: Path
    requests_sent: int = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"cannot parse wrk duration {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkRun:
    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk output lacks {pattern!r}:\n{output}")
        return match

    done = find(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)")
    errors = 0
    socket_errors = re.search(r"Socket errors: (.*)$", output, re.MULTILINE)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    return WrkRun(
        requests=int(done.group(1)),
        duration_s=_duration_ms(done.group(2) + done.group(3)) / 1000,
        rps=float(find(r"^Requests/sec:\s+([\d.]+)").group(1)),
        latency_avg_ms=_duration_ms(find(r"^\s*Latency\s+([\d.]+(?:us|ms|s|m))").group(1)),
        latency_p50_ms=_duration_ms(find(r"^\s*50%\s+([\d.]+(?:us|ms|s|m))").group(1)),
        latency_p99_ms=_duration_ms(find(r"^\s*99%\s+([\d.]+(?:us|ms|s|m))").group(1)),
        errors=errors,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _server_command(port: int) -> list[str]:
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "instrument_overhead:create_app",
        "--factory",
        "--app-dir",
        str(Path(__file__).resolve().parent),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
        "--loop",
        loop,
        "--http",
        http,
    ]


# Server on one core, wrk on the other: without pinning the scheduler moves both around and the
# run-to-run spread on a 2-core machine is larger than the differences being measured.
SERVER_CPU, WRK_CPU = 0, 1


def pinned_to(cpu: int) -> Callable[[], None] | None:
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def start_server(variant: str, workdir: Path) -> Server:
    log_dir = workdir / variant
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k.lower() != "prometheus_multiproc_dir"}
    env[ENV_VARIANT] = variant
    env[ENV_LOG_DIR] = str(log_dir)
    stderr_path = log_dir / "server.stderr"
    port = free_port()
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            _server_command(port),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            preexec_fn=pinned_to(SERVER_CPU),
        )
    return Server(variant, port, process, log_dir, stderr_path)


def wait_until_ready(server: Server) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.variant}: uvicorn exited with {server.process.returncode}:\n"
                + server.stderr_path.read_text(errors="replace")[-2000:]
            )
        try:
            with urllib.request.urlopen(f"{server.url}{REQUEST_PATH}", timeout=2) as response:
                if response.status == 200:
                    server.requests_sent += 1
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.variant}: no answer on {server.url} in {SERVER_START_TIMEOUT_S}s")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)


@contextlib.contextmanager
def running_servers(variants: list[str], workdir: Path) -> Iterator[dict[str, Server]]:
    servers: dict[str, Server] = {}
    try:
        for variant in variants:
            servers[variant] = start_server(variant, workdir)
        for server in servers.values():
            wait_until_ready(server)
        yield servers
    finally:
        for server in servers.values():
            stop_server(server)


def run_wrk(wrk: str, server: Server, duration_s: int) -> WrkRun:
    command = [
        wrk,
        f"-t{WRK_THREADS}",
        f"-c{WRK_CONNECTIONS}",
        f"-d{duration_s}s",
        "--timeout",
        "5s",
        "--latency",
        f"{server.url}{REQUEST_PATH}?{REQUEST_QUERY}",
    ]
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=duration_s + 30,
        check=False,
        preexec_fn=pinned_to(WRK_CPU),
    )
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    run = parse_wrk(completed.stdout)
    server.requests_sent += run.requests
    return run


def wrk_benchmark(
    wrk: str, duration_s: int, rounds: int, workdir: Path
) -> tuple[WrkResult, list[Check]]:
    result = WrkResult(
        duration_s=duration_s, rounds=rounds, connections=WRK_CONNECTIONS, threads=WRK_THREADS
    )
    names = list(VARIANTS)
    checks: list[Check] = []
    with running_servers(names, workdir) as servers:
        for variant in names:
            run_wrk(wrk, servers[variant], WRK_WARMUP_S)
            result.runs[variant] = []
        for round_no in range(rounds):
            order = names[round_no % len(names) :] + names[: round_no % len(names)]
            for variant in order:
                result.runs[variant].append(run_wrk(wrk, servers[variant], duration_s))
            summary = "  ".join(f"{v}={result.runs[v][-1].rps:.0f}" for v in names)
            print(f"  round {round_no + 1}/{rounds} (requests/s): {summary}", flush=True)
        for variant in REQUEST_COUNTERS:
            server = servers[variant]
            with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
                exposition = response.read().decode()
            checks.append(
                Check(
                    "wrk",
                    variant,
                    "request counter",
                    server.requests_sent,
                    counted_requests(variant, exposition),
                    exact=False,
                )
            )
        for variant in names:
            errors = sum(run.errors for run in result.runs[variant])
            checks.append(Check("wrk", variant, "wrk errors/non-2xx", 0, errors, exact=True))
    # The servers have exited: every access-log line is on disk.
    full = servers[OPSBOOK_FULL]
    checks.append(
        Check(
            "wrk",
            OPSBOOK_FULL,
            "access-log lines",
            full.requests_sent,
            logged_requests(full.log_dir),
            exact=False,
        )
    )
    for variant, runs in result.runs.items():
        result.median_rps[variant] = statistics.median(run.rps for run in runs)
        result.median_us[variant] = 1e6 / result.median_rps[variant]
        result.median_p50_ms[variant] = statistics.median(run.latency_p50_ms for run in runs)
        result.median_p99_ms[variant] = statistics.median(run.latency_p99_ms for run in runs)
    return result, checks


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


@dataclass
class TargetVerdict:
    measurement: str
    description: str
    limit: float
    ratio: float | None
    verdict: str  # PASS, FAIL or INCONCLUSIVE


def added(per_request_us: dict[str, float]) -> dict[str, float]:
    bare = per_request_us[BARE]
    return {variant: us - bare for variant, us in per_request_us.items()}


def evaluate_targets(measurement: str, per_request_us: dict[str, float]) -> list[TargetVerdict]:
    extra = added(per_request_us)
    baseline = extra[INSTRUMENTATOR]
    verdicts = []
    for variant, description, limit in TARGETS:
        if baseline <= 0:
            # Instrumentator measured as free: noise swamped the signal, no honest ratio.
            verdicts.append(TargetVerdict(measurement, description, limit, None, "INCONCLUSIVE"))
            continue
        ratio = extra[variant] / baseline
        verdict = "PASS" if ratio <= limit else "FAIL"
        verdicts.append(TargetVerdict(measurement, description, limit, ratio, verdict))
    return verdicts


def print_table(title: str, per_request_us: dict[str, float], extra_cols: dict[str, Any]) -> None:
    extra = added(per_request_us)
    baseline = extra[INSTRUMENTATOR]
    headers = ["variant", "µs/req", "added µs", "x bare", "added / instr.", *extra_cols]
    rows = []
    for variant in VARIANTS:
        ratio = f"{extra[variant] / baseline:.2f}" if baseline > 0 else "n/a"
        rows.append(
            [
                LABELS[variant],
                f"{per_request_us[variant]:.1f}",
                f"{extra[variant]:+.1f}",
                f"{per_request_us[variant] / per_request_us[BARE]:.2f}",
                "-" if variant == BARE else ratio,
                *(str(column[variant]) for column in extra_cols.values()),
            ]
        )
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    print(f"\n{title}")
    line = "  ".join(
        h.ljust(w) if i == 0 else h.rjust(w)
        for i, (h, w) in enumerate(zip(headers, widths, strict=True))
    )
    print(line)
    print("-" * len(line))
    for row in rows:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def versions() -> dict[str, str]:
    found = {}
    for package in (
        "opsbook",
        "fastapi",
        "starlette",
        "uvicorn",
        "prometheus-client",
        "prometheus-fastapi-instrumentator",
        "starlette-exporter",
        "uvloop",
        "httptools",
    ):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "missing"
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=20_000, help="in-process requests/round")
    parser.add_argument("--rounds", type=int, default=5, help="in-process rounds (round-robin)")
    parser.add_argument("--warmup", type=int, default=2_000, help="in-process warm-up requests")
    parser.add_argument("--wrk-duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--wrk-rounds", type=int, default=5, help="wrk runs per variant")
    parser.add_argument("--no-wrk", action="store_true", help="skip the wrk measurement")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    for name in ("requests", "rounds", "warmup", "wrk_duration", "wrk_rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def _exit_on_signal(signum: int, _frame: object) -> None:
    # Raise instead of dying so the `finally` blocks stop the uvicorn servers.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    started = time.monotonic()
    print(
        f"instrument overhead: python {platform.python_version()}, {os.cpu_count()} cpus, "
        + ", ".join(f"{k} {v}" for k, v in versions().items())
    )
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "versions": versions(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    checks: list[Check] = []
    verdicts: list[TargetVerdict] = []

    with tempfile.TemporaryDirectory(prefix="opsbook-bench-") as tmp:
        workdir = Path(tmp)

        print(
            f"\nA. in-process ASGI driver: {args.rounds} rounds x {args.requests} requests "
            f"per variant (after {args.warmup} warm-up), median of rounds"
        )
        inproc, inproc_checks = in_process(
            args.requests, args.rounds, args.warmup, workdir / "in-process"
        )
        checks += inproc_checks
        report["in_process"] = asdict(inproc)
        spread = {
            "min..max": {
                v: f"{min(us):.1f}..{max(us):.1f}" for v, us in inproc.per_round_us.items()
            }
        }
        print_table("A. in-process (median µs per request)", inproc.median_us, spread)
        verdicts += evaluate_targets("in-process", inproc.median_us)

        wrk = shutil.which("wrk")
        if args.no_wrk:
            print("\nB. wrk: skipped (--no-wrk)")
        elif wrk is None:
            print(
                "\nB. wrk: SKIPPED, wrk is not installed. Install it with "
                "`apt-get install wrk` (Debian/Ubuntu) or `brew install wrk`, then re-run."
            )
        else:
            print(
                f"\nB. wrk on loopback: uvicorn (1 worker) per variant, "
                f"wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{args.wrk_duration}s, "
                f"{args.wrk_rounds} round(s) round-robin, median"
            )
            wrk_result, wrk_checks = wrk_benchmark(
                wrk, args.wrk_duration, args.wrk_rounds, workdir / "wrk"
            )
            checks += wrk_checks
            report["wrk"] = asdict(wrk_result)
            print_table(
                "B. wrk (µs per request = 1e6 / requests per second)",
                wrk_result.median_us,
                {
                    "req/s": {v: f"{r:.0f}" for v, r in wrk_result.median_rps.items()},
                    "p50 ms": {v: f"{r:.2f}" for v, r in wrk_result.median_p50_ms.items()},
                    "p99 ms": {v: f"{r:.2f}" for v, r in wrk_result.median_p99_ms.items()},
                },
            )
            verdicts += evaluate_targets("wrk", wrk_result.median_us)

    print("\nverification (each instrumented variant recorded what it was sent):")
    for check in checks:
        print(check.line())
    verified = all(check.ok for check in checks)

    print("\ntargets (added µs per request, opsbook / prometheus-fastapi-instrumentator):")
    for v in verdicts:
        ratio = "n/a" if v.ratio is None else f"{v.ratio:.2f}"
        print(f"  {v.verdict:<12} [{v.measurement}] {v.description}: ratio {ratio}")
    print(f"\ntotal time {time.monotonic() - started:.0f}s")

    report["verification"] = [{**asdict(c), "ok": c.ok} for c in checks]
    report["targets"] = [asdict(v) for v in verdicts]
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"results written to {args.json}")
    if not verified:
        print("VERIFICATION FAILED: some variant did not record its requests; see above.")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
