"""`make demo`: serve the example app on loopback and say where to look."""

from __future__ import annotations

import os
import socket

import uvicorn


def _port() -> int:
    wanted = int(os.environ.get("PORT", "8000"))
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", wanted))
            return wanted
        except OSError:
            pass
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    host = os.environ.get("HOST", "127.0.0.1")
    port = _port()
    base = f"http://{host}:{port}"
    print(
        "opsbook demo: the example inventory service, instrumented with opsbook.instrument\n"
        f"  {base}/items              the service itself (also /items/1, /report, /flaky)\n"
        f"  {base}/health             liveness\n"
        f"  {base}/health/detailed    readiness: database, disk, memory, cpu, restock job\n"
        f"  {base}/health/database    one component\n"
        f"  {base}/metrics            Prometheus metrics (OpenMetrics with Accept)\n"
        f"  {base}/docs               the service's OpenAPI UI\n"
        "JSON logs follow, one line per request. Ctrl+C stops.",
        flush=True,
    )
    uvicorn.run("examples.instrumented_app.main:app", host=host, port=port)


if __name__ == "__main__":
    main()
