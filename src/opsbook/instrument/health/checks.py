"""Built-in health checks and the base class for custom ones.

A check observes one component (the database, Redis, an upstream API, the disk) and returns one
or more observations. Checks never block the event loop: blocking client calls run in a worker
thread. Timeouts, exceptions, concurrency and caching are the runner's job, not the check's.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ssl
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import datetime, timedelta
from typing import Any, TypedDict, Unpack, cast
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
import psutil

from opsbook.instrument.health.model import Observation, Status, threshold_status, utc_now

CheckOutcome = Observation | list[Observation]


class HealthCheck(ABC):
    """Subclass and implement `observe()` for a check of your own."""

    component_type: str = "component"
    # The measurement a failure is reported under, so `checks["database:responseTime"]` exists
    # whether the database answered or not.
    measurement: str = "status"

    def __init__(
        self,
        name: str,
        *,
        component_type: str | None = None,
        timeout: float | None = None,
        critical: bool = True,
    ) -> None:
        if not name or "/" in name or ":" in name:
            raise ValueError(f"health check name must be non-empty, without '/' or ':' ({name!r})")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"health check {name!r}: timeout must be positive (got {timeout})")
        self.name = name
        if component_type is not None:
            self.component_type = component_type
        self.timeout = timeout
        self.critical = critical

    @abstractmethod
    async def observe(self) -> CheckOutcome:
        """Measure the component. Raise, or hang, and the runner reports `fail` for you."""


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


class SQLAlchemyCheck(HealthCheck):
    """`SELECT 1` latency plus connection-pool usage of a SQLAlchemy engine (sync or async)."""

    component_type = "datastore"
    measurement = "responseTime"

    def __init__(
        self,
        engine: Any,
        name: str = "database",
        *,
        warn_ms: float | None = 1000.0,
        timeout: float | None = None,
        critical: bool = True,
    ) -> None:
        super().__init__(name, timeout=timeout, critical=critical)
        self.engine = engine
        self.warn_ms = warn_ms

    async def observe(self) -> CheckOutcome:
        from sqlalchemy import text

        started = time.perf_counter()
        sync_engine = getattr(self.engine, "sync_engine", None)
        if sync_engine is not None:  # AsyncEngine
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            pool = sync_engine.pool
        else:
            await asyncio.to_thread(self._ping_sync, text("SELECT 1"))
            pool = self.engine.pool
        latency = _elapsed_ms(started)
        observations = [
            Observation(
                "responseTime",
                threshold_status(latency, self.warn_ms, None),
                latency,
                "ms",
            )
        ]
        connections = _pool_observation(pool)
        if connections is not None:
            observations.append(connections)
        return observations

    def _ping_sync(self, statement: Any) -> None:
        with self.engine.connect() as conn:
            conn.execute(statement)


def _pool_observation(pool: Any) -> Observation | None:
    """Pool size / checked out / overflow, for pools that keep them (QueuePool and kin)."""
    try:
        size = int(pool.size())
        checked_out = int(pool.checkedout())
        # QueuePool counts overflow from -size upwards; below the pool size there is none.
        overflow = max(int(pool.overflow()), 0)
    except (AttributeError, TypeError):
        return None  # NullPool, StaticPool, SingletonThreadPool: nothing to report
    max_overflow = getattr(pool, "_max_overflow", None)
    exhausted = (
        isinstance(max_overflow, int)
        and max_overflow >= 0
        and checked_out >= size + max_overflow
        and checked_out > 0
    )
    return Observation(
        "connections",
        "warn" if exhausted else "pass",
        checked_out,
        "connections",
        output="connection pool exhausted" if exhausted else None,
        extra={"poolSize": size, "overflow": overflow, "maxOverflow": max_overflow},
    )


class RedisCheck(HealthCheck):
    """Redis `PING`, over its own short connection (from a `redis://` URL) or a given client."""

    component_type = "datastore"
    measurement = "responseTime"

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        name: str = "redis",
        warn_ms: float | None = 500.0,
        timeout: float | None = None,
        critical: bool = True,
    ) -> None:
        super().__init__(name, timeout=timeout, critical=critical)
        if (url is None) == (client is None):
            raise ValueError("RedisCheck needs exactly one of url= or client=")
        if url is not None and urlsplit(url).scheme not in {"redis", "rediss"}:
            raise ValueError("RedisCheck url must start with redis:// or rediss://")
        self.url = url
        self.client = client
        self.warn_ms = warn_ms

    async def observe(self) -> CheckOutcome:
        started = time.perf_counter()
        if self.client is not None:
            reply = self.client.ping()
            if inspect.isawaitable(reply):
                reply = await reply
            if reply is not True and reply not in (b"PONG", "PONG"):
                return Observation("responseTime", "fail", output=f"PING answered {reply!r}")
        else:
            await self._ping_url()
        latency = _elapsed_ms(started)
        return Observation(
            "responseTime", threshold_status(latency, self.warn_ms, None), latency, "ms"
        )

    async def _ping_url(self) -> None:
        assert self.url is not None
        parts = urlsplit(self.url)
        context = ssl.create_default_context() if parts.scheme == "rediss" else None
        reader, writer = await asyncio.open_connection(
            parts.hostname or "127.0.0.1", parts.port or 6379, ssl=context
        )
        try:
            commands: list[list[str]] = []
            if parts.password:
                auth = ["AUTH", unquote(parts.password)]
                if parts.username:
                    auth.insert(1, unquote(parts.username))
                commands.append(auth)
            commands.append(["PING"])
            for command in commands:
                writer.write(_resp_command(command))
                await writer.drain()
                line = await reader.readline()
                if not line.startswith(b"+"):
                    # Error replies carry their code first (NOAUTH, WRONGPASS, LOADING, ...).
                    code = line[1:].split(b" ", 1)[0].decode("ascii", "replace").strip()
                    raise RedisReplyError(f"{command[0]} failed: {code or 'connection closed'}")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class RedisReplyError(Exception):
    """Redis answered with an error; the message names the command and the error code."""


def _resp_command(parts: list[str]) -> bytes:
    encoded = [p.encode() for p in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in encoded)


def redact_url(url: str) -> str:
    """The URL without credentials or query string, fit for a public health document."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class HTTPCheck(HealthCheck):
    """An HTTP dependency answers with the expected status."""

    component_type = "component"
    measurement = "responseTime"

    def __init__(
        self,
        url: str,
        name: str | None = None,
        *,
        expected_status: int | Collection[int] = 200,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        warn_ms: float | None = None,
        timeout: float | None = None,
        critical: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(
                f"HTTPCheck url must be an absolute http(s) URL (got {redact_url(url)!r})"
            )
        super().__init__(name or parts.hostname, timeout=timeout, critical=critical)
        self.url = url
        self.expected = (
            frozenset({expected_status})
            if isinstance(expected_status, int)
            else frozenset(expected_status)
        )
        self.method = method
        self.headers = dict(headers or {})
        self.warn_ms = warn_ms
        self._transport = transport

    async def observe(self) -> CheckOutcome:
        started = time.perf_counter()
        # Timeouts are enforced by the runner; httpx's own would fire first with a vaguer message.
        async with httpx.AsyncClient(timeout=None, transport=self._transport) as client:  # noqa: S113
            response = await client.request(self.method, self.url, headers=self.headers)
        latency = _elapsed_ms(started)
        shown = redact_url(self.url)
        if response.status_code not in self.expected:
            expected = ", ".join(str(s) for s in sorted(self.expected))
            return Observation(
                "responseTime",
                "fail",
                latency,
                "ms",
                output=f"{self.method} {shown} answered {response.status_code} "
                f"(expected {expected})",
                extra={"statusCode": response.status_code},
            )
        return Observation(
            "responseTime",
            threshold_status(latency, self.warn_ms, None),
            latency,
            "ms",
            extra={"statusCode": response.status_code},
        )


class UtilizationOptions(TypedDict, total=False):
    """The keyword options every utilization check (disk, memory, CPU) takes."""

    name: str | None
    warn: float
    fail: float
    reader: Callable[[], float] | None
    timeout: float | None
    critical: bool


class _UtilizationCheck(HealthCheck):
    """Percent of a resource in use, against warn and fail thresholds (85 % and 90 %, as in
    the runbooks). `reader=` replaces the psutil reading (a container's cgroup, say)."""

    component_type = "system"
    measurement = "utilization"
    default_name: str

    def __init__(
        self,
        *,
        name: str | None = None,
        warn: float = 85.0,
        fail: float = 90.0,
        reader: Callable[[], float] | None = None,
        timeout: float | None = None,
        critical: bool = True,
    ) -> None:
        name = name or self.default_name
        super().__init__(name, timeout=timeout, critical=critical)
        if not 0 < warn <= fail <= 100:
            raise ValueError(
                f"{name} check: need 0 < warn <= fail <= 100 (got warn={warn}, fail={fail})"
            )
        self.warn = warn
        self.fail = fail
        self._reader = reader

    @abstractmethod
    def _read_percent(self) -> float: ...

    async def observe(self) -> CheckOutcome:
        reader = self._reader or self._read_percent
        percent = round(float(await asyncio.to_thread(reader)), 2)
        status = threshold_status(percent, self.warn, self.fail)
        output = None
        if status != "pass":
            limit = self.fail if status == "fail" else self.warn
            output = f"{self.name} at {percent}% (limit {limit}%)"
        return Observation(
            "utilization",
            status,
            percent,
            "percent",
            output=output,
            extra={"warnAt": self.warn, "failAt": self.fail},
        )


class DiskCheck(_UtilizationCheck):
    """Share of the filesystem holding `path` in use."""

    default_name = "disk"

    def __init__(self, path: str = "/", **options: Unpack[UtilizationOptions]) -> None:
        super().__init__(**options)
        self.path = path

    def _read_percent(self) -> float:
        return float(psutil.disk_usage(self.path).percent)


class MemoryCheck(_UtilizationCheck):
    """Share of system memory in use."""

    default_name = "memory"

    def _read_percent(self) -> float:
        return float(psutil.virtual_memory().percent)


class CPUCheck(_UtilizationCheck):
    """CPU use since the previous probe (no sampling sleep)."""

    default_name = "cpu"

    def __init__(self, **options: Unpack[UtilizationOptions]) -> None:
        super().__init__(**options)
        if self._reader is None:
            psutil.cpu_percent(interval=None)  # primes the counter; the first reading is 0.0

    def _read_percent(self) -> float:
        return float(psutil.cpu_percent(interval=None))


LastSuccess = Callable[[], "datetime | Awaitable[datetime | None] | None"]


class JobCheck(HealthCheck):
    """A scheduled job succeeded recently enough (`no data update for 24 h` is a failure).

    Either call `record_success()` from the job, or pass `last_success=` to read the time from
    where the job writes it (a table, a file) — the latter also works across worker processes.
    """

    component_type = "component"
    measurement = "lastSuccess"

    def __init__(
        self,
        name: str,
        *,
        max_age: timedelta | float,
        warn_age: timedelta | float | None = None,
        last_success: LastSuccess | None = None,
        timeout: float | None = None,
        critical: bool = True,
    ) -> None:
        super().__init__(name, timeout=timeout, critical=critical)
        self.max_age = _as_timedelta(max_age)
        self.warn_age = None if warn_age is None else _as_timedelta(warn_age)
        if self.max_age <= timedelta(0):
            raise ValueError(f"job check {name!r}: max_age must be positive")
        self._last_success_fn = last_success
        self._recorded: datetime | None = None
        self._watching_since = utc_now()

    def record_success(self, at: datetime | None = None) -> None:
        self._recorded = at or utc_now()

    async def observe(self) -> CheckOutcome:
        last = self._recorded
        if self._last_success_fn is not None:
            value = self._last_success_fn()
            if inspect.isawaitable(value):
                value = await value
            last = value
        now = utc_now()
        if last is None:
            waited = now - self._watching_since
            status: Status = "fail" if waited > self.max_age else "pass"
            return Observation(
                "lastSuccess",
                status,
                None,
                output=f"no successful run recorded in {_human(waited)} "
                f"(allowed {_human(self.max_age)})",
            )
        if last.tzinfo is None:
            raise ValueError(f"job check {self.name!r}: last_success must be timezone-aware")
        age = now - last
        if age > self.max_age:
            status = "fail"
        elif self.warn_age is not None and age > self.warn_age:
            status = "warn"
        else:
            status = "pass"
        output = (
            None
            if status == "pass"
            else (f"last success {_human(age)} ago (allowed {_human(self.max_age)})")
        )
        return Observation(
            "lastSuccess",
            status,
            round(age.total_seconds(), 3),
            "s",
            output=output,
            extra={"lastSuccess": last.isoformat()},
        )


def _as_timedelta(value: timedelta | float) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours < 48 else f"{hours // 24}d{hours % 24}h"


FunctionResult = (
    Status | bool | tuple[Any, ...] | Observation | list[Observation] | Mapping[str, Any]
)


class FunctionCheck(HealthCheck):
    """Any callable (sync or async) returning pass/warn/fail, optionally with an observed value.

    Accepted return values: `"pass"`/`"warn"`/`"fail"`, a bool, `(status, value)`,
    `(status, value, unit)`, a mapping with `status` and optional `observed_value`,
    `observed_unit`, `output`, or `Observation`(s).
    """

    def __init__(
        self,
        fn: Callable[[], FunctionResult | Awaitable[FunctionResult]],
        name: str | None = None,
        *,
        measurement: str = "status",
        component_type: str | None = None,
        timeout: float | None = None,
        critical: bool = True,
    ) -> None:
        if name is None:
            name = getattr(fn, "__name__", "").removeprefix("check_")
            if not name.isidentifier():
                raise ValueError(
                    f"FunctionCheck: cannot name a check after {fn!r}; pass name='...' "
                    "(it becomes the component in /health/<name> and the checks keys)"
                )
        super().__init__(
            name,
            component_type=component_type,
            timeout=timeout,
            critical=critical,
        )
        self.fn = fn
        self.measurement = measurement

    async def observe(self) -> CheckOutcome:
        if inspect.iscoroutinefunction(self.fn):
            result = await self.fn()
        else:
            result = await asyncio.to_thread(self.fn)
            if inspect.isawaitable(result):
                result = await result
        return _coerce(self.measurement, cast(FunctionResult, result))


_STATUSES = {"pass", "warn", "fail"}


def _coerce(measurement: str, result: FunctionResult) -> CheckOutcome:
    if isinstance(result, Observation):
        return result
    if isinstance(result, list) and all(isinstance(o, Observation) for o in result):
        return result
    if isinstance(result, bool):
        return Observation(measurement, "pass" if result else "fail")
    if isinstance(result, str) and result in _STATUSES:
        return Observation(measurement, result)
    if isinstance(result, tuple) and 1 <= len(result) <= 3 and result[0] in _STATUSES:
        value = result[1] if len(result) > 1 else None
        unit = result[2] if len(result) > 2 else None
        return Observation(measurement, result[0], value, unit)
    if isinstance(result, Mapping) and result.get("status") in _STATUSES:
        return Observation(
            measurement,
            result["status"],
            result.get("observed_value"),
            result.get("observed_unit"),
            result.get("output"),
        )
    raise TypeError(
        "a health check function must return 'pass', 'warn', 'fail', a bool, "
        f"(status, value[, unit]), or a mapping with 'status' (got {type(result).__name__})"
    )
