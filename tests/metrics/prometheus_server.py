"""A real Prometheus (Debian's package) on loopback over blocks built with promtool.

Used by the backend-agreement tests and by benchmarks/metrics.py, so both load Prometheus the
same way: `promtool tsdb create-blocks-from openmetrics`, then `prometheus` serving that folder.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


class PrometheusNotAvailable(RuntimeError):
    """promtool or prometheus is missing or would not start."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PrometheusNotAvailable(f"{name} is not installed: apt-get install prometheus")
    return path


def create_blocks(openmetrics: Path, data_dir: Path) -> float:
    """`promtool tsdb create-blocks-from openmetrics`; return the seconds it took."""
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics"]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, str(openmetrics), str(data_dir)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise PrometheusNotAvailable(f"promtool failed: {done.stderr.strip()[-2000:]}")
    return time.perf_counter() - started


def blocks_size(data_dir: Path) -> int:
    """Bytes of the persisted blocks (chunks + index + meta), the WAL and head excluded."""
    total = 0
    for block in data_dir.iterdir():
        if block.is_dir() and (block / "meta.json").exists():
            total += sum(f.stat().st_size for f in block.rglob("*") if f.is_file())
    return total


@contextmanager
def running_prometheus(data_dir: Path, *, cpu: int | None = None) -> Iterator[str]:
    """A Prometheus serving ``data_dir`` on a free loopback port; yields its base URL."""
    binary = _binary("prometheus")
    port = _free_port()
    config = data_dir.parent / f"{data_dir.name}-prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    command = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        "--storage.tsdb.retention.time=3650d",
        f"--web.listen-address=127.0.0.1:{port}",
        "--query.max-samples=500000000",
    ]
    if cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", str(cpu), *command]
    log_path = data_dir.parent / f"{data_dir.name}-prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise PrometheusNotAvailable(f"prometheus did not start; see {log_path}")
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
