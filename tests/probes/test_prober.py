"""The prober on a controllable clock with scripted attempts: states, samples, verdicts, restarts.

The checks themselves are tested against real servers in ``test_checks_*.py``; here a script
decides each attempt's outcome so every threshold crossing happens at an exact, known time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from opsbook.metrics.memory import MemoryStore
from opsbook.metrics.model import Matcher, is_stale
from opsbook.probes.prober import Prober
from opsbook.probes.results import CheckResult, ComponentCheck
from opsbook.probes.service import StateChange, StoredProbe
from opsbook.probes.specs import Check, HttpCheck, ProbeSpec, TcpCheck


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Script:
    """Attempt outcomes in order, per target; the last one repeats."""

    def __init__(self, outcomes: Mapping[str, list[CheckResult]]) -> None:
        self.outcomes = {k: list(v) for k, v in outcomes.items()}
        self.calls: list[str] = []

    async def __call__(self, check: Check, timeout_s: float) -> CheckResult:
        self.calls.append(check.target)
        queue = self.outcomes[check.target]
        return queue.pop(0) if len(queue) > 1 else queue[0]


class MemoryStates:
    """The StateStore protocol in memory, with the database's clamping rule."""

    def __init__(self) -> None:
        self.probes: dict[tuple[str, str], StoredProbe] = {}
        self.changes: list[StateChange] = []
        self.fail_saves = 0

    async def load(self) -> dict[tuple[str, str], StoredProbe]:
        return dict(self.probes)

    async def save(self, probes: Sequence[StoredProbe], changes: Sequence[StateChange]) -> None:
        if self.fail_saves:
            self.fail_saves -= 1
            raise ConnectionError("database is restarting")
        for probe in probes:
            self.probes[(probe.service, probe.probe)] = probe
        for change in changes:
            self._record(change)

    def _record(self, change: StateChange) -> None:
        latest = [c for c in self.changes if c.service == change.service]
        if latest and latest[-1].state == change.state:
            return
        at = max(change.at, latest[-1].at) if latest else change.at
        self.changes.append(StateChange(change.service, change.state, at))

    async def close_open(self, last_seen: Mapping[str, float]) -> None:
        for service, at in last_seen.items():
            self._record(StateChange(service, "unknown", at))

    async def forget_except(self, keep: set[tuple[str, str]]) -> None:
        self.probes = {k: v for k, v in self.probes.items() if k in keep}

    def history(self, service: str) -> list[tuple[str, float]]:
        return [(c.state, c.at) for c in self.changes if c.service == service]


OK = CheckResult(success=True, duration_s=0.01, status_code=200)
FAIL = CheckResult(
    success=False, duration_s=0.02, error="[STATUS] == 200 failed (503)", status_code=503
)
DOWN = CheckResult(success=False, duration_s=5.0, error="timed out after 5s")


def http_spec(name: str = "health", service: str = "api", **kwargs: object) -> ProbeSpec:
    return ProbeSpec(
        service=service,
        name=name,
        check=HttpCheck(url=f"http://{service}.test/{name}"),
        interval_s=10.0,
        timeout_s=5.0,
        labels=(("team", "core"),),
        **kwargs,  # type: ignore[arg-type]
    )


def values(store: MemoryStore, name: str, **labels: str) -> list[tuple[int, float]]:
    matchers = [Matcher.equal("__name__", name)]
    matchers += [Matcher.equal(k, v) for k, v in labels.items()]
    found = store.select(matchers, 0, 2**62)
    assert len(found) <= 1, found
    if not found:
        return []
    return [(int(t), float(v)) for t, v in zip(found[0].timestamps, found[0].values, strict=True)]


async def attempts(prober: Prober, clock: Clock, key: tuple[str, str], n: int) -> None:
    for _ in range(n):
        await prober.probe_once(*key)
        clock.now += 10.0


async def test_thresholds_are_exact_and_verdicts_are_backdated() -> None:
    clock = Clock()
    t0 = clock.now
    spec = http_spec(failure_threshold=3, success_threshold=2)
    script = Script(
        {"http://api.test/health": [OK, FAIL, FAIL, OK, FAIL, FAIL, FAIL, FAIL, OK, FAIL, OK, OK]}
    )
    states = MemoryStates()
    prober = Prober([spec], states=states, clock=clock, check=script)
    seen = []
    for _ in range(12):
        status = await prober.probe_once("api", "health")
        seen.append(status.state.state)
        clock.now += 10.0
    await prober.flush()

    assert seen == ["up"] * 6 + ["down"] * 5 + ["up"]
    # Down from the first failure of the streak of three (attempt 4), up from the first
    # success of the streak of two (attempt 10).
    assert states.history("api") == [("up", t0), ("down", t0 + 40), ("up", t0 + 100)]
    stored = states.probes[("api", "health")]
    assert stored.state.state == "up" and stored.state.since == t0 + 100
    assert stored.last_error is None and stored.status_code == 200


async def test_samples_use_blackbox_names_and_the_service_labels() -> None:
    clock = Clock()
    store = MemoryStore()
    cert = CheckResult(success=True, duration_s=0.25, status_code=200, cert_expiry_unix_s=1.8e9)
    prober = Prober(
        [http_spec()],
        store=store,
        clock=clock,
        check=Script({"http://api.test/health": [cert, FAIL]}),
    )
    await attempts(prober, clock, ("api", "health"), 2)
    await prober.flush()

    t0 = int((clock.now - 20) * 1000)
    labels = {
        "service": "api",
        "probe": "health",
        "instance": "http://api.test/health",
        "team": "core",
    }
    assert values(store, "probe_success", **labels) == [(t0, 1.0), (t0 + 10_000, 0.0)]
    assert values(store, "probe_duration_seconds", **labels) == [(t0, 0.25), (t0 + 10_000, 0.02)]
    assert values(store, "probe_http_status_code", **labels) == [(t0, 200.0), (t0 + 10_000, 503.0)]
    expiry = values(store, "probe_ssl_earliest_cert_expiry", **labels)
    # The failed attempt had no certificate: the series ends with a stale marker.
    assert expiry[0] == (t0, 1.8e9)
    assert expiry[1][0] == t0 + 10_000 and is_stale(expiry[1][1])


async def test_health_components_become_series_and_vanished_ones_go_stale() -> None:
    clock = Clock()
    store = MemoryStore()
    body = CheckResult(
        success=True,
        duration_s=0.1,
        status_code=200,
        health_status="warn",
        components=(
            ComponentCheck("database", "responseTime", "pass", 3.5, "ms"),
            ComponentCheck("database", "connections", "warn", 95, None, "pool nearly full"),
            ComponentCheck("cache", "", "fail", None, None, "redis down"),
        ),
    )
    only_db = CheckResult(
        success=True,
        duration_s=0.1,
        status_code=200,
        health_status="pass",
        components=(ComponentCheck("database", "responseTime", "pass", 4.0, "ms"),),
    )
    prober = Prober(
        [http_spec()],
        store=store,
        clock=clock,
        check=Script({"http://api.test/health": [body, only_db]}),
    )
    await attempts(prober, clock, ("api", "health"), 2)
    await prober.flush()
    t0 = int((clock.now - 20) * 1000)

    status = "opsbook_health_check_status"
    assert values(store, status, service="api", component="database") == [
        (t0, 0.5),
        (t0 + 10_000, 1.0),
    ]
    cache = values(store, status, service="api", component="cache")
    assert cache[0] == (t0, 0.0) and is_stale(cache[1][1])
    observed = "opsbook_health_check_observed_value"
    assert values(store, observed, component="database", measurement="responseTime") == [
        (t0, 3.5),
        (t0 + 10_000, 4.0),
    ]
    connections = values(store, observed, component="database", measurement="connections")
    assert connections[0] == (t0, 95.0) and is_stale(connections[1][1])


async def test_a_warning_degrades_the_service_and_a_noncritical_probe_only_degrades_it() -> None:
    clock = Clock()
    t0 = clock.now
    warn = CheckResult(success=True, duration_s=0.1, status_code=200, health_status="warn")
    specs = [
        http_spec(),
        ProbeSpec(
            "api", "smtp", TcpCheck("mail.test", 25), 10.0, 5.0, failure_threshold=1, critical=False
        ),
    ]
    script = Script(
        {"http://api.test/health": [OK, warn, OK, OK], "mail.test:25": [OK, OK, FAIL, OK]}
    )
    states = MemoryStates()
    prober = Prober(specs, states=states, clock=clock, check=script)
    for _ in range(4):
        await prober.probe_once("api", "health")
        await prober.probe_once("api", "smtp")
        clock.now += 10.0
    await prober.flush()
    assert states.history("api") == [
        ("up", t0),
        ("degraded", t0 + 10),  # the health endpoint warned
        ("up", t0 + 20),
        ("degraded", t0 + 20),  # the non-critical smtp probe went down
        ("up", t0 + 30),
    ]
    assert prober.service_health("api") == "up"


async def test_stop_ends_every_series_and_marks_the_verdict_unknown() -> None:
    clock = Clock()
    store = MemoryStore()
    states = MemoryStates()
    prober = Prober(
        [http_spec()],
        store=store,
        states=states,
        clock=clock,
        check=Script({"http://api.test/health": [OK]}),
    )
    await prober.start()
    await prober.probe_once("api", "health")
    clock.now += 5.0
    await prober.stop()
    success = values(store, "probe_success", service="api")
    assert len(success) == 2 and is_stale(success[1][1])
    assert success[1][0] == int(clock.now * 1000)
    assert states.history("api")[-1] == ("unknown", clock.now)


async def test_a_restart_continues_a_pending_failure_streak_and_keeps_since() -> None:
    clock = Clock()
    t0 = clock.now
    states = MemoryStates()
    spec = http_spec(failure_threshold=3)
    script = Script({"http://api.test/health": [OK, FAIL, FAIL]})
    first = Prober([spec], states=states, clock=clock, check=script)
    await first.start()
    await attempts(first, clock, ("api", "health"), 3)
    await first.stop()
    assert states.probes[("api", "health")].state.failures == 2

    clock.now += 300.0  # opsbook was down for five minutes
    second = Prober(
        [spec], states=states, clock=clock, check=Script({"http://api.test/health": [FAIL]})
    )
    await second.start()
    status = await second.probe_once("api", "health")
    await second.stop()
    assert status.state.state == "down"
    assert status.state.since == t0 + 10  # the first failure, before the restart
    history = states.history("api")
    assert history[:2] == [("up", t0), ("unknown", t0 + 30)]
    # Down is recorded from the restart on: the time nobody watched stays unknown.
    assert history[2] == ("down", t0 + 330)


async def test_a_failing_state_store_loses_nothing() -> None:
    clock = Clock()
    states = MemoryStates()
    states.fail_saves = 1
    prober = Prober(
        [http_spec()], states=states, clock=clock, check=Script({"http://api.test/health": [FAIL]})
    )
    await prober.probe_once("api", "health")
    with pytest.raises(ConnectionError):
        await prober.flush()
    await prober.flush()
    assert states.history("api") == [("down", clock.now)]
    assert states.probes[("api", "health")].last_error == "[STATUS] == 200 failed (503)"


async def test_a_slow_probe_does_not_delay_the_others() -> None:
    async def check(check: Check, timeout_s: float) -> CheckResult:
        if check.target.endswith("slow"):
            await asyncio.sleep(timeout_s)
            return DOWN
        return OK

    fast = ProbeSpec("api", "fast", HttpCheck("http://api.test/fast"), 0.05, 0.04)
    slow = ProbeSpec("api", "slow", HttpCheck("http://api.test/slow"), 0.3, 0.25)
    prober = Prober([fast, slow], check=check, concurrency=2)
    await prober.start()
    await asyncio.sleep(0.9)
    statuses = {s.spec.name: s for s in prober.statuses()}
    delay = prober.scheduling_delay_quantile(0.99)
    await prober.stop()
    assert statuses["fast"].state.successes >= 8
    assert statuses["slow"].state.state == "down"
    assert delay is not None and delay < 0.05


async def test_an_attempt_that_crashes_is_logged_and_the_schedule_goes_on() -> None:
    calls = 0

    async def check(check: Check, timeout_s: float) -> CheckResult:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("bug in a check")
        return OK

    prober = Prober([ProbeSpec("api", "p", HttpCheck("http://api.test/"), 0.05, 0.04)], check=check)
    await prober.start()
    for _ in range(100):  # the crash's traceback takes a while to render on a dev console
        if calls >= 3:
            break
        await asyncio.sleep(0.05)
    await prober.stop()
    assert calls >= 3
    assert prober.statuses()[0].state.state == "up"


def test_duplicate_probes_are_rejected() -> None:
    with pytest.raises(ValueError, match="same service and name"):
        Prober([http_spec(), http_spec()])
