"""The prober: every probe on its own schedule, results to the metrics store and the state store.

Each probe has its own asyncio task and a fixed phase within its interval (a hash of its
service and name), so 1,000 probes every 10 s spread over the 10 s instead of firing at once,
and a restart keeps the phase. At most ``concurrency`` attempts run at once; each is bounded by
its own timeout, so a slow target holds one slot for at most its timeout and never the others'
schedule. Attempts never raise (the checks turn every failure into a result), and a failing
store is logged and retried: nothing here can stop the prober.

Samples and state changes are written by one writer task every ``write_interval_s``: batched
appends to the metrics store, and one transaction with the probe states that changed and the
services whose verdict changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from opsbook.metrics.model import STALE_NAN, Labels
from opsbook.metrics.scrape.targets import phase_offset_s
from opsbook.metrics.store_api import SampleStore
from opsbook.probes.checks import run_check
from opsbook.probes.results import CheckResult
from opsbook.probes.samples import ProbeSeries, attempt_samples
from opsbook.probes.service import SAVED_AT_LEAST_EVERY_S, StateChange, StoredProbe
from opsbook.probes.specs import Check, ProbeSpec
from opsbook.probes.thresholds import (
    ProbeState,
    ProbeView,
    ServiceHealth,
    advance,
    service_health,
)

log = structlog.get_logger("opsbook.probes")

CheckFn = Callable[[Check, float], Awaitable[CheckResult]]
DELAY_WINDOW = 10_000
"""Scheduling delays kept for :meth:`Prober.scheduling_delay_quantile`."""


class StateStore(Protocol):
    """Where probe states and service verdicts outlive the process (the relational store)."""

    async def load(self) -> dict[tuple[str, str], StoredProbe]: ...

    async def save(self, probes: Sequence[StoredProbe], changes: Sequence[StateChange]) -> None: ...

    async def close_open(self, last_seen: Mapping[str, float]) -> None:
        """Mark each service's verdict unknown from the given time (nobody was watching)."""
        ...

    async def forget_except(self, keep: set[tuple[str, str]]) -> None:
        """Drop the stored states of probes that are no longer configured."""
        ...


@dataclass(frozen=True, slots=True)
class ProbeStatus:
    """A probe and what the prober knows of it, as the API shows it."""

    spec: ProbeSpec
    state: ProbeState
    last: CheckResult | None


@dataclass(slots=True)
class _Probe:
    spec: ProbeSpec
    series: ProbeSeries
    state: ProbeState = field(default_factory=ProbeState)
    last: CheckResult | None = None
    live: frozenset[Labels] = frozenset()
    """Series of the last attempt: those missing from the next one get a stale marker."""
    dirty: bool = False
    saved_at: float | None = None
    last_write_ms: int | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def view(self) -> ProbeView:
        degraded = self.last is not None and self.last.health_status == "warn"
        return ProbeView(critical=self.spec.critical, state=self.state, degraded=degraded)

    def stored(self) -> StoredProbe:
        last = self.last
        return StoredProbe(
            service=self.spec.service,
            probe=self.spec.name,
            state=self.state,
            last_error=None if last is None else last.error,
            last_duration_s=None if last is None else last.duration_s,
            status_code=None if last is None else last.status_code,
            health_status=None if last is None else last.health_status,
            components=() if last is None else last.components,
        )


class Prober:
    """Runs ``specs`` until :meth:`stop`.

    ``store`` receives the samples (none without one); ``states`` keeps probe states and
    service verdicts across restarts (nothing kept without one). ``clock`` gives the attempts'
    timestamps in Unix seconds; ``check`` performs one attempt (tests replace it).
    """

    def __init__(
        self,
        specs: Sequence[ProbeSpec],
        *,
        store: SampleStore | None = None,
        states: StateStore | None = None,
        concurrency: int = 256,
        clock: Callable[[], float] = time.time,
        check: CheckFn = run_check,
        write_interval_s: float = 1.0,
    ) -> None:
        keys = [spec.key for spec in specs]
        if len(set(keys)) != len(keys):
            raise ValueError("two probes have the same service and name")
        self._probes = {spec.key: _Probe(spec, ProbeSeries.of(spec)) for spec in specs}
        self._by_service: dict[str, list[_Probe]] = {}
        for probe in self._probes.values():
            self._by_service.setdefault(probe.spec.service, []).append(probe)
        self._health: dict[str, ServiceHealth] = dict.fromkeys(self._by_service, "unknown")
        self._store = store
        self._states = states
        self._slots = asyncio.Semaphore(concurrency)
        self._clock = clock
        self._check = check
        self._write_interval_s = write_interval_s
        self._pending_series: list[Labels] = []
        self._pending_ts: list[int] = []
        self._pending_values: list[float] = []
        self._pending_changes: list[StateChange] = []
        self._delays: deque[float] = deque(maxlen=DELAY_WINDOW)
        self._tasks: list[asyncio.Task[None]] = []
        self._writer: asyncio.Task[None] | None = None
        self._watching_since: float | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Restore the stored states, then start every probe's loop and the writer."""
        if self._tasks:
            raise RuntimeError("the prober is already running; stop() it before starting again")
        if self._states is not None:
            await self._restore(self._states)
        now = self._clock()
        self._watching_since = now
        for probe in self._probes.values():
            offset_s = probe_offset_s(probe.spec, now)
            name = f"probe {probe.spec.service}/{probe.spec.name}"
            self._tasks.append(asyncio.create_task(self._run(probe, offset_s), name=name))
        self._writer = asyncio.create_task(self._write_loop(), name="probe writer")
        log.info("prober started", probes=len(self._probes), services=len(self._by_service))

    async def stop(self) -> None:
        """Stop the loops, end every series with a stale marker, and write everything pending.

        Every service's verdict turns unknown from now: while opsbook is stopped, nobody knows.
        """
        tasks, self._tasks = self._tasks, []
        if self._writer is not None:
            tasks.append(self._writer)
            self._writer = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        now = self._clock()
        now_ms = _ms(now)
        for probe in self._probes.values():
            self._end_series(probe, now_ms)
        await self.flush()
        if self._states is not None:
            try:
                await self._states.close_open(dict.fromkeys(self._by_service, now))
            except Exception:
                log.exception("could not record that the prober stopped")
        if self._store is not None:
            await asyncio.to_thread(self._store.flush)
        log.info("prober stopped")

    # --- reading -----------------------------------------------------------------------------

    def statuses(self) -> list[ProbeStatus]:
        return [ProbeStatus(p.spec, p.state, p.last) for p in self._probes.values()]

    def live_states(self) -> dict[tuple[str, str], StoredProbe]:
        """Every attempted probe's state as it is now (the database lags by up to a minute)."""
        return {key: p.stored() for key, p in self._probes.items() if p.state.last_at is not None}

    def service_health(self, service: str) -> ServiceHealth:
        return self._health.get(service, "unknown")

    def scheduling_delay_quantile(self, q: float) -> float | None:
        """The ``q`` quantile of recent scheduling delays (due time to start), in seconds."""
        if not self._delays:
            return None
        ordered = sorted(self._delays)
        return ordered[min(len(ordered) - 1, math.floor(q * len(ordered)))]

    @property
    def attempts_started(self) -> int:
        """Scheduled attempts started since the last :meth:`reset_delays` (at most the window)."""
        return len(self._delays)

    def reset_delays(self) -> None:
        self._delays.clear()

    # --- attempts ----------------------------------------------------------------------------

    async def probe_once(self, service: str, name: str) -> ProbeStatus:
        """Run one attempt of the probe now, record it, and return the probe's new status."""
        probe = self._probes.get((service, name))
        if probe is None:
            raise KeyError(f"no probe {name!r} of service {service!r}")
        await self._attempt(probe, due=None)
        return ProbeStatus(probe.spec, probe.state, probe.last)

    async def _run(self, probe: _Probe, offset_s: float) -> None:
        loop = asyncio.get_running_loop()
        interval_s = probe.spec.interval_s
        next_at = loop.time() + offset_s
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            try:
                await self._attempt(probe, due=next_at)
            except Exception:
                with contextlib.suppress(Exception):
                    log.exception("probe attempt crashed; the next one runs on schedule")
            next_at += interval_s
            now = loop.time()
            if next_at < now:
                # The attempt overran its slot: skip the missed ones, keep the phase.
                next_at += math.ceil((now - next_at) / interval_s) * interval_s

    async def _attempt(self, probe: _Probe, due: float | None) -> None:
        spec = probe.spec
        async with probe.lock:
            async with self._slots:
                if due is not None:
                    self._delays.append(max(0.0, asyncio.get_running_loop().time() - due))
                at = self._clock()
                result = await self._check(spec.check, spec.timeout_s)
            self._record(probe, result, at)

    def _record(self, probe: _Probe, result: CheckResult, at: float) -> None:
        spec = probe.spec
        before = probe.state
        previous = probe.last
        probe.state = advance(
            before,
            result.success,
            at,
            failure_threshold=spec.failure_threshold,
            success_threshold=spec.success_threshold,
        )
        probe.last = result
        self._queue_samples(probe, result, _ms(at))
        changed = probe.state.state != before.state
        if (
            changed
            or previous is None
            or previous.error != result.error
            or previous.health_status != result.health_status
            or _component_states(previous) != _component_states(result)
            or probe.saved_at is None
            or at - probe.saved_at >= SAVED_AT_LEAST_EVERY_S
        ):
            probe.dirty = True
        if changed:
            self._log_change(probe, before)
        if changed or previous is None or previous.health_status != result.health_status:
            # A new probe state dates from the first attempt of its streak, not from when the
            # threshold was reached; a warning dates from this attempt.
            since = probe.state.since if changed and probe.state.since is not None else at
            self._judge_service(spec.service, since)

    def _judge_service(self, service: str, since: float) -> None:
        health = service_health(p.view() for p in self._by_service[service])
        if health == self._health[service]:
            return
        self._health[service] = health
        if self._watching_since is not None:
            # A streak that began before a restart: the verdict counts from when we watch again.
            since = max(since, self._watching_since)
        self._pending_changes.append(StateChange(service=service, state=health, at=since))
        log.info("service state changed", service=service, state=health)

    def _log_change(self, probe: _Probe, before: ProbeState) -> None:
        fields = {
            "service": probe.spec.service,
            "probe": probe.spec.name,
            "instance": probe.spec.instance,
        }
        if probe.state.state == "down":
            error = probe.last.error if probe.last is not None else None
            log.warning("probe is down", **fields, error=error)
        elif before.state == "down":
            log.info("probe is up again", **fields)

    # --- samples -----------------------------------------------------------------------------

    def _queue_samples(self, probe: _Probe, result: CheckResult, t_ms: int) -> None:
        if self._store is None:
            return
        if probe.last_write_ms is not None and t_ms <= probe.last_write_ms:
            t_ms = probe.last_write_ms + 1  # two attempts in one millisecond: keep both in order
        series, values = attempt_samples(probe.spec, probe.series, result)
        live = frozenset(series)
        gone = [s for s in probe.live if s not in live]
        probe.live = live
        series += gone
        values += [STALE_NAN] * len(gone)
        self._pending_series += series
        self._pending_ts += [t_ms] * len(series)
        self._pending_values += values
        probe.last_write_ms = t_ms

    def _end_series(self, probe: _Probe, now_ms: int) -> None:
        """Stale markers for everything the probe wrote: its series stop now."""
        if self._store is None or probe.last_write_ms is None:
            return
        t_ms = max(now_ms, probe.last_write_ms + 1)
        series = list(probe.live)
        self._pending_series += series
        self._pending_ts += [t_ms] * len(series)
        self._pending_values += [STALE_NAN] * len(series)
        probe.live = frozenset()
        probe.last_write_ms = None

    # --- writing -----------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            await asyncio.sleep(self._write_interval_s)
            try:
                await self.flush()
            except Exception:
                with contextlib.suppress(Exception):
                    log.exception("could not write probe results; retrying")

    async def flush(self) -> None:
        """Write the samples, probe states and service verdicts gathered so far."""
        if self._store is not None and self._pending_series:
            series, self._pending_series = self._pending_series, []
            timestamps, self._pending_ts = self._pending_ts, []
            values, self._pending_values = self._pending_values, []
            self._store.append(series, timestamps, values)
        if self._states is None:
            return
        dirty = [p for p in self._probes.values() if p.dirty]
        changes = self._pending_changes
        if not dirty and not changes:
            return
        stored = [p.stored() for p in dirty]
        for probe in dirty:
            probe.dirty = False
        self._pending_changes = []
        try:
            await self._states.save(stored, changes)
        except BaseException:
            # Keep them for the next try: a state change must not be lost to a busy database.
            for probe in dirty:
                probe.dirty = True
            self._pending_changes = changes + self._pending_changes
            raise
        now = self._clock()
        for probe in dirty:
            probe.saved_at = now

    async def _restore(self, states: StateStore) -> None:
        stored = await states.load()
        last_seen: dict[str, float] = {}
        for key, record in stored.items():
            probe = self._probes.get(key)
            if record.state.last_at is not None:
                seen = last_seen.get(record.service, record.state.last_at)
                last_seen[record.service] = max(seen, record.state.last_at)
            if probe is not None:
                probe.state = record.state
        await states.forget_except(set(self._probes))
        # From the last attempt before the stop (or crash) until now, nobody watched.
        await states.close_open(last_seen)


def probe_offset_s(spec: ProbeSpec, now: float) -> float:
    """Seconds from ``now`` to the probe's first attempt, at its fixed phase."""
    return phase_offset_s(f"{spec.service}/{spec.name}", spec.interval_s, _ms(now))


def _component_states(result: CheckResult) -> tuple[tuple[str, str, str], ...]:
    return tuple((c.component, c.measurement, c.status) for c in result.components)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
