"""The scraper: one asyncio task per target, each scraping on its own schedule into the store.

Targets never wait for each other: each has its own task and its own timeout, so a hanging
endpoint only delays itself. A scrape that fails (connection refused, timeout, HTTP error,
a body that does not parse or is over a limit) stores nothing of the body; it reports
``up 0`` with the reason and ends the target's series with stale markers.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

import httpx
import structlog

from opsbook.config.models import ScrapeLimits
from opsbook.metrics.exposition import (
    ExpositionError,
    ExpositionLimitError,
    ParseLimits,
    SeriesCache,
    parse_exposition,
)
from opsbook.metrics.model import Labels
from opsbook.metrics.scrape.errors import ScrapeError
from opsbook.metrics.scrape.http import Fetched, fetch
from opsbook.metrics.scrape.samples import (
    SampleBatch,
    ScrapedSamples,
    assemble,
    report_samples,
    report_series,
)
from opsbook.metrics.scrape.staleness import marker_time, stale_markers, vanished
from opsbook.metrics.scrape.targets import Target, scrape_offset_s
from opsbook.metrics.store_api import SampleStore

log = structlog.get_logger("opsbook.metrics.scrape")

PARSE_IN_THREAD_BYTES = 1024 * 1024
"""Bodies larger than this are parsed in a worker thread, so the event loop keeps serving."""


@dataclass(slots=True)
class TargetStatus:
    """A target and the outcome of its last scrape, as ``/api/v1/targets`` shows it."""

    job: str
    instance: str
    url: str
    """Without credentials."""
    labels: Labels
    """The labels every sample of the target gets, ``job`` and ``instance`` included."""
    health: str
    """``up``, ``down``, or ``unknown`` before the first scrape."""
    last_scrape_ms: int | None
    last_duration_s: float | None
    last_error: str | None
    samples: int
    """Samples in the last scrape's body (0 when it failed)."""
    interval: timedelta
    timeout: timedelta


class _TargetState:
    """What the scraper remembers of one target between scrapes."""

    __slots__ = (
        "label_cache",
        "labels",
        "last_write_ms",
        "live",
        "lock",
        "reported",
        "series_cache",
        "status",
        "target",
    )

    def __init__(self, target: Target) -> None:
        self.target = target
        self.labels = target.label_set()
        self.series_cache = SeriesCache()
        self.label_cache: dict[Labels, Labels] = {}
        self.live: frozenset[Labels] = frozenset()
        """Series of the last successful scrape that go stale when they vanish."""
        self.last_write_ms: int | None = None
        self.reported = False
        """Whether the synthetic series have samples (so they need stale markers on stop)."""
        # The loop and a direct scrape_once() call must not diff against the same state at once.
        self.lock = asyncio.Lock()
        self.status = TargetStatus(
            job=target.job,
            instance=target.instance,
            url=target.safe_url,
            labels=self.labels,
            health="unknown",
            last_scrape_ms=None,
            last_duration_s=None,
            last_error=None,
            samples=0,
            interval=target.interval,
            timeout=target.timeout,
        )

    def log_fields(self) -> dict[str, str]:
        return {"job": self.target.job, "instance": self.target.instance, "url": self.status.url}


class Scraper:
    """Scrapes every target into ``store`` until :meth:`stop`.

    ``client`` is used as given (and left open); without one the scraper makes its own and
    closes it on :meth:`stop`. ``clock`` gives the sample timestamps (seconds since the epoch).
    """

    def __init__(
        self,
        store: SampleStore,
        targets: Sequence[Target],
        limits: ScrapeLimits,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._limits = limits
        self._parse_limits = ParseLimits(
            sample_limit=limits.sample_limit,
            label_limit=limits.label_limit,
            label_name_length_limit=limits.label_name_length_limit,
            label_value_length_limit=limits.label_value_length_limit,
        )
        self._client = client
        self._owns_client = client is None
        self._clock = clock
        self._states: dict[Target, _TargetState] = {}
        self._tasks: list[asyncio.Task[None]] = []
        owners: dict[Labels, Target] = {}
        for target in targets:
            state = _TargetState(target)
            # Two targets with the same labels would write the same series and end each
            # other's series with stale markers on every scrape.
            first = owners.setdefault(state.labels, target)
            if first is not target:
                log.warning(
                    "scrape target ignored: another target has the same labels",
                    **state.log_fields(),
                    same_as=first.safe_url,
                )
                continue
            self._states[target] = state

    @property
    def targets(self) -> list[Target]:
        return list(self._states)

    async def start(self) -> None:
        """Start one scrape loop per target, each at its own phase within its interval."""
        if self._tasks:
            raise RuntimeError("the scraper is already running; stop() it before starting again")
        now_ms = self._now_ms()
        for state in self._states.values():
            offset_s = scrape_offset_s(state.target, now_ms)
            name = f"scrape {state.target.job} {state.target.instance}"
            self._tasks.append(asyncio.create_task(self._run(state, offset_s), name=name))

    async def stop(self) -> None:
        """Stop the loops, end every series scraped with a stale marker, flush the store."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            now_ms = self._now_ms()
            batches = []
            for state in self._states.values():
                async with state.lock:
                    batches.append(self._end_of_run(state, now_ms))
            markers = SampleBatch.concat(*batches)
            if len(markers):
                self._store.append(markers.series, markers.timestamps_ms, markers.values)
            await asyncio.to_thread(self._store.flush)
        finally:
            if self._owns_client and self._client is not None:
                await self._client.aclose()
                self._client = None

    def statuses(self) -> list[TargetStatus]:
        """A snapshot of every target's status (copies: later scrapes do not change them)."""
        return [replace(state.status) for state in self._states.values()]

    async def scrape_once(self, target: Target) -> TargetStatus:
        """Scrape ``target`` now, store what it gives, and return its new status.

        Scrape failures are not raised: they are the status's ``last_error``. What is raised is
        a failure of the store itself (the loop logs it and goes on).
        """
        state = self._states.get(target)
        if state is None:
            raise ValueError(
                f"{target.safe_url} (job {target.job!r}) is not a target of this scraper"
            )
        async with state.lock:
            return await self._scrape(state)

    # --- internals -----------------------------------------------------------------------

    async def _run(self, state: _TargetState, offset_s: float) -> None:
        loop = asyncio.get_running_loop()
        interval_s = state.target.interval.total_seconds()
        next_at = loop.time() + offset_s
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            try:
                await self.scrape_once(state.target)
            except Exception:
                # Not even a failing log sink may end this target's scrapes.
                with contextlib.suppress(Exception):
                    log.exception(
                        "scrape crashed; the next one runs on schedule", **state.log_fields()
                    )
            next_at += interval_s
            now = loop.time()
            if next_at < now:
                # The scrape overran its slot: skip the missed ones, keep the phase.
                next_at += math.ceil((now - next_at) / interval_s) * interval_s

    async def _scrape(self, state: _TargetState) -> TargetStatus:
        scrape_ms = self._now_ms()
        started = time.perf_counter()
        scraped: ScrapedSamples | None = None
        error: str | None = None
        try:
            fetched = await fetch(self._http(), state.target, self._limits.body_size_bytes)
            scraped = await self._parse(state, fetched, scrape_ms)
        except ScrapeError as exc:
            error = str(exc)
        duration_s = time.perf_counter() - started

        if scraped is not None:
            body = scraped.samples
            gone = vanished(state.live, scraped.tracked)
            series_added = scraped.series_added
        else:
            body = SampleBatch.concat()
            gone = list(state.live)  # a failed scrape ends every series of the last good one
            series_added = 0
        report = report_samples(
            state.labels,
            scrape_ms,
            up=scraped is not None,
            duration_s=duration_s,
            samples_scraped=len(body),
            series_added=series_added,
        )
        batch = SampleBatch.concat(body, stale_markers(gone, scrape_ms), report)
        self._store.append(batch.series, batch.timestamps_ms, batch.values)

        # Only once stored does this scrape become the one the next scrape is compared with.
        if scraped is not None:
            state.live = scraped.tracked
            state.label_cache = scraped.label_cache
        else:
            state.live = frozenset()
        state.last_write_ms = scrape_ms
        state.reported = True
        self._record(state, scrape_ms, duration_s, len(body), error)
        return replace(state.status)

    async def _parse(self, state: _TargetState, fetched: Fetched, scrape_ms: int) -> ScrapedSamples:
        def parse() -> ScrapedSamples:
            try:
                parsed = parse_exposition(
                    fetched.body,
                    fetched.content_type,
                    cache=state.series_cache,
                    limits=self._parse_limits,
                )
            except ExpositionLimitError as exc:
                raise ScrapeError(f"{exc}; {_limit_hint(str(exc))}") from None
            except ExpositionError as exc:
                raise ScrapeError(
                    f"the response is not in the Prometheus text or OpenMetrics format: {exc}"
                ) from None
            return assemble(
                parsed, state.labels, scrape_ms, state.label_cache, self._limits.label_limit
            )

        if len(fetched.body) <= PARSE_IN_THREAD_BYTES:
            return parse()
        in_thread = asyncio.ensure_future(asyncio.to_thread(parse))
        try:
            return await asyncio.shield(in_thread)
        except asyncio.CancelledError:
            # A thread cannot be interrupted. Wait for it while still holding the target's
            # lock, so that no later scrape uses the target's SeriesCache at the same time.
            await asyncio.wait([in_thread])
            raise

    def _end_of_run(self, state: _TargetState, now_ms: int) -> SampleBatch:
        series = list(state.live)
        if state.reported:
            series += report_series(state.labels)
        if not series:
            return SampleBatch.concat()
        t_ms = marker_time(now_ms, state.last_write_ms)
        state.live = frozenset()
        state.reported = False
        state.last_write_ms = t_ms
        return stale_markers(series, t_ms)

    def _record(
        self,
        state: _TargetState,
        scrape_ms: int,
        duration_s: float,
        samples: int,
        error: str | None,
    ) -> None:
        status = state.status
        was = status.health
        status.health = "up" if error is None else "down"
        status.last_scrape_ms = scrape_ms
        status.last_duration_s = duration_s
        status.last_error = error
        status.samples = samples
        if error is None:
            if was == "down":
                log.info("scrape target is up again", **state.log_fields())
            return
        if was != "down":
            log.warning("scrape target is down", **state.log_fields(), error=error)
        else:
            log.debug("scrape failed", **state.log_fields(), error=error)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                # No pool limit: a queue for connections would eat into scrape timeouts.
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
                # As Prometheus: proxies only when configured, never from the environment.
                trust_env=False,
            )
        return self._client

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


_LIMIT_NAMES = (
    "sample_limit",
    "label_limit",
    "label_name_length_limit",
    "label_value_length_limit",
)


def _limit_hint(message: str) -> str:
    """What to do about a limit error: point at the setting the parser's message names."""
    named = [name for name in _LIMIT_NAMES if name in message]
    if not named:
        return "raise the limit under metrics.limits or expose less"
    return f"raise metrics.limits.{max(named, key=len)} or expose less"
