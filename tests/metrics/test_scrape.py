"""The scraper against real loopback HTTP endpoints: what it stores, when it fails, staleness."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from structlog.testing import capture_logs

from opsbook.config import OpsbookConfig
from opsbook.config.models import ScrapeLimits
from opsbook.metrics.embedded import EmbeddedStore
from opsbook.metrics.memory import MemoryStore
from opsbook.metrics.model import Labels, Matcher, is_stale, labels_from_mapping
from opsbook.metrics.scrape import Scraper, Target, TargetStatus, targets_from_config
from opsbook.metrics.scrape.http import ACCEPT
from opsbook.metrics.scrape.targets import (
    make_target,
    redact_text,
    redact_url,
    scrape_offset_s,
)
from tests.metrics.scrape_server import OPENMETRICS_FORMAT, MetricsEndpoint, metrics_endpoint

T0_S = 1_700_000_000.0
T0 = 1_700_000_000_000
STEP_S = 15.0
STEP = 15_000
FOREVER = (0, 2**62)

HEALTHY = """\
# HELP http_requests_total Requests served.
# TYPE http_requests_total counter
http_requests_total{method="GET",code="200"} 1027
http_requests_total{method="POST",code="500"} 3
# TYPE queue_depth gauge
queue_depth 4
"""


class FakeClock:
    """Wall time the test moves by hand, so sample timestamps are exact."""

    def __init__(self, start_s: float = T0_S) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float = STEP_S) -> None:
        self.now_s += seconds


@pytest.fixture
def endpoint() -> Iterator[MetricsEndpoint]:
    with metrics_endpoint(HEALTHY) as served:
        yield served


def target_of(
    endpoint: MetricsEndpoint,
    job: str = "api",
    *,
    timeout_s: float = 2.0,
    interval_s: float = STEP_S,
    labels: dict[str, str] | None = None,
) -> Target:
    return make_target(
        job,
        endpoint.url,
        timedelta(seconds=interval_s),
        timedelta(seconds=timeout_s),
        labels,
    )


Points = list[tuple[int, float]]


def samples_of(store: MemoryStore | EmbeddedStore, name: str) -> dict[Labels, Points]:
    """Every sample of every series named ``name``, as ``{labels: [(t, v), ...]}``."""
    found = store.select([Matcher.equal("__name__", name)], *FOREVER)
    return {
        data.labels: list(zip(data.timestamps.tolist(), data.values.tolist(), strict=True))
        for data in found
    }


def only(series: dict[Labels, Points]) -> Points:
    assert len(series) == 1, f"expected one series, got {list(series)}"
    return next(iter(series.values()))


def values_at(store: MemoryStore, name: str, t_ms: int) -> dict[Labels, float]:
    return {
        labels: value
        for labels, points in samples_of(store, name).items()
        for t, value in points
        if t == t_ms
    }


def labels(**pairs: str) -> Labels:
    return labels_from_mapping(pairs)


async def wait_for(condition: Callable[[], bool], deadline_s: float = 30.0) -> None:
    """Poll ``condition`` until true; fail after ``deadline_s`` (a hang guard, not timing)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not condition():
        if loop.time() > end:
            pytest.fail("condition not met in time")
        await asyncio.sleep(0.01)


class FlakyStore(MemoryStore):
    """A store whose first append fails, as a full disk would."""

    def __init__(self) -> None:
        super().__init__()
        self.appends = 0

    def append(
        self,
        series: Sequence[Labels],
        timestamps_ms: Sequence[int] | npt.NDArray[np.int64],
        values: Sequence[float] | npt.NDArray[np.float64],
    ) -> None:
        self.appends += 1
        if self.appends == 1:
            raise OSError("No space left on device")
        super().append(series, timestamps_ms, values)


# --- a healthy target ------------------------------------------------------------------------


async def test_healthy_scrape_stores_samples_with_target_labels(
    endpoint: MetricsEndpoint,
) -> None:
    store, clock = MemoryStore(), FakeClock()
    target = target_of(endpoint, labels={"team": "platform"})
    scraper = Scraper(store, [target], ScrapeLimits(), clock=clock)

    status = await scraper.scrape_once(target)

    instance = f"127.0.0.1:{endpoint.port}"
    assert status.health == "up"
    assert status.last_error is None
    assert status.last_scrape_ms == T0
    assert status.samples == 3
    common = {"job": "api", "instance": instance, "team": "platform"}
    assert samples_of(store, "http_requests_total") == {
        labels(__name__="http_requests_total", method="GET", code="200", **common): [(T0, 1027.0)],
        labels(__name__="http_requests_total", method="POST", code="500", **common): [(T0, 3.0)],
    }
    assert samples_of(store, "queue_depth") == {
        labels(__name__="queue_depth", **common): [(T0, 4.0)]
    }
    assert samples_of(store, "up") == {labels(__name__="up", **common): [(T0, 1.0)]}
    assert only(samples_of(store, "scrape_samples_scraped")) == [(T0, 3.0)]
    assert only(samples_of(store, "scrape_samples_post_metric_relabeling")) == [(T0, 3.0)]
    assert only(samples_of(store, "scrape_series_added")) == [(T0, 3.0)]
    [(t, duration)] = only(samples_of(store, "scrape_duration_seconds"))
    assert t == T0
    assert 0 < duration == status.last_duration_s

    clock.advance()
    await scraper.scrape_once(target)
    # The same series again: nothing new.
    assert only(samples_of(store, "scrape_series_added"))[-1] == (T0 + STEP, 0.0)
    await scraper.stop()


async def test_request_is_the_one_prometheus_makes(endpoint: MetricsEndpoint) -> None:
    target = target_of(endpoint, timeout_s=2.5)
    scraper = Scraper(MemoryStore(), [target], ScrapeLimits())
    await scraper.scrape_once(target)
    await scraper.stop()

    [headers] = endpoint.requests
    assert headers["accept"] == ACCEPT
    assert ACCEPT.startswith("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4")
    assert headers["x-prometheus-scrape-timeout-seconds"] == "2.5"
    assert "gzip" in headers["accept-encoding"]
    assert headers["user-agent"].startswith("opsbook/")


async def test_gzip_body_is_decoded(endpoint: MetricsEndpoint) -> None:
    endpoint.serve(HEALTHY, gzip=True)
    store = MemoryStore()
    target = target_of(endpoint)
    scraper = Scraper(store, [target], ScrapeLimits(), clock=FakeClock())

    status = await scraper.scrape_once(target)

    assert status.health == "up", status.last_error
    assert only(samples_of(store, "queue_depth")) == [(T0, 4.0)]
    await scraper.stop()


async def test_large_body_is_parsed_off_the_event_loop_and_stored(
    endpoint: MetricsEndpoint,
) -> None:
    # Over 1 MB, so the parse runs in a worker thread.
    lines = [f'big_metric{{shard="{i}",pad="{"x" * 24}"}} {i}\n' for i in range(25_000)]
    body = "# TYPE big_metric gauge\n" + "".join(lines)
    assert len(body) > 1024 * 1024
    endpoint.serve(body)
    store = MemoryStore()
    target = target_of(endpoint)
    scraper = Scraper(store, [target], ScrapeLimits(), clock=FakeClock())

    status = await scraper.scrape_once(target)

    assert status.health == "up", status.last_error
    assert status.samples == 25_000
    stored = samples_of(store, "big_metric")
    assert len(stored) == 25_000
    assert stored[
        labels(
            __name__="big_metric",
            shard="24999",
            pad="x" * 24,
            job="api",
            instance=target.instance,
        )
    ] == [(T0, 24999.0)]
    await scraper.stop()


# --- failures --------------------------------------------------------------------------------


async def test_slow_target_times_out_without_delaying_another() -> None:
    with metrics_endpoint(HEALTHY) as slow, metrics_endpoint(HEALTHY) as fast:
        slow.serve(hang=True)
        store = MemoryStore()
        slow_target = target_of(slow, "slow", timeout_s=1.0)
        fast_target = target_of(fast, "fast")
        scraper = Scraper(store, [slow_target, fast_target], ScrapeLimits(), clock=FakeClock())

        slow_scrape = asyncio.create_task(scraper.scrape_once(slow_target))
        await asyncio.to_thread(slow.request_seen.wait, 10)
        # The slow endpoint holds its request; the other target scrapes meanwhile.
        fast_status = await scraper.scrape_once(fast_target)
        assert fast_status.health == "up"
        assert not slow_scrape.done()

        slow_status = await slow_scrape
        assert slow_status.health == "down"
        assert slow_status.last_error is not None
        assert "timeout" in slow_status.last_error
        assert "1s" in slow_status.last_error
        assert values_at(store, "up", T0) == {
            labels(__name__="up", job="slow", instance=slow_target.instance): 0.0,
            labels(__name__="up", job="fast", instance=fast_target.instance): 1.0,
        }
        await scraper.stop()


async def test_garbage_body_fails_with_the_parse_error_and_stores_nothing(
    endpoint: MetricsEndpoint,
) -> None:
    endpoint.serve(
        "<!DOCTYPE html>\n<html><body>Login required</body></html>\n",
        content_type="text/html; charset=utf-8",
    )
    store = MemoryStore()
    target = target_of(endpoint)
    scraper = Scraper(store, [target], ScrapeLimits(), clock=FakeClock())

    status = await scraper.scrape_once(target)

    assert status.health == "down"
    assert status.samples == 0
    assert status.last_error is not None
    assert "line 1: " in status.last_error
    names = {dict(labels)["__name__"] for labels in store.series([], *FOREVER)}
    assert names == {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    }
    assert only(samples_of(store, "up")) == [(T0, 0.0)]
    assert only(samples_of(store, "scrape_samples_scraped")) == [(T0, 0.0)]
    await scraper.stop()


async def test_http_error_status_fails_the_scrape(endpoint: MetricsEndpoint) -> None:
    endpoint.serve("oops", status=500)
    target = target_of(endpoint)
    scraper = Scraper(MemoryStore(), [target], ScrapeLimits())

    status = await scraper.scrape_once(target)

    assert status.health == "down"
    assert status.last_error == "server returned HTTP status 500 Internal Server Error"
    await scraper.stop()


@pytest.mark.parametrize(
    ("gzipped", "declare_length", "endless"),
    [
        pytest.param(False, True, False, id="declared-length"),
        pytest.param(False, False, False, id="no-length"),
        pytest.param(True, False, False, id="gzip-bomb"),
        pytest.param(False, False, True, id="endless-stream"),
    ],
)
async def test_body_over_the_size_limit_fails_while_streaming(
    endpoint: MetricsEndpoint, gzipped: bool, declare_length: bool, endless: bool
) -> None:
    # 200 kB of text: gzip makes it a few hundred bytes, well under the limit on the wire.
    endpoint.serve(
        "filler_metric 1\n" * 12_800, gzip=gzipped, declare_length=declare_length, endless=endless
    )
    store = MemoryStore()
    # A long timeout: the endless stream must end at the limit, not at the timeout.
    target = target_of(endpoint, timeout_s=30.0)
    scraper = Scraper(store, [target], ScrapeLimits(body_size_bytes=64 * 1024))

    status = await scraper.scrape_once(target)

    assert status.health == "down"
    assert status.last_error is not None
    assert status.last_error.startswith("body exceeds 65536 bytes")
    assert samples_of(store, "filler_metric") == {}
    await scraper.stop()


async def test_over_the_sample_limit_fails_and_stores_nothing(endpoint: MetricsEndpoint) -> None:
    store = MemoryStore()
    target = target_of(endpoint)
    scraper = Scraper(store, [target], ScrapeLimits(sample_limit=2), clock=FakeClock())

    status = await scraper.scrape_once(target)

    assert status.health == "down"
    assert status.last_error is not None
    assert "more than sample_limit 2" in status.last_error
    assert "metrics.limits.sample_limit" in status.last_error
    assert samples_of(store, "http_requests_total") == {}
    assert samples_of(store, "queue_depth") == {}
    assert only(samples_of(store, "up")) == [(T0, 0.0)]
    await scraper.stop()


async def test_label_value_over_the_length_limit_fails(endpoint: MetricsEndpoint) -> None:
    endpoint.serve('session_open{user="' + "u" * 40 + '"} 1\nqueue_depth 4\n')
    store = MemoryStore()
    target = target_of(endpoint)
    scraper = Scraper(store, [target], ScrapeLimits(label_value_length_limit=32))

    status = await scraper.scrape_once(target)

    assert status.health == "down"
    assert status.last_error is not None
    assert "label_value_length_limit 32" in status.last_error
    assert samples_of(store, "queue_depth") == {}
    await scraper.stop()


async def test_label_limit_counts_the_target_labels(endpoint: MetricsEndpoint) -> None:
    # Exposed: __name__, a, b (3 labels). With job, instance and team added: 6.
    endpoint.serve('wide{a="1",b="2"} 1\n')
    store = MemoryStore()
    target = target_of(endpoint, labels={"team": "platform"})
    scraper = Scraper(store, [target], ScrapeLimits(label_limit=5))

    status = await scraper.scrape_once(target)

    assert status.health == "down"
    assert status.last_error is not None
    assert "6 labels" in status.last_error
    assert "label_limit 5" in status.last_error
    assert samples_of(store, "wide") == {}
    await scraper.stop()


async def test_closed_port_is_down_and_ends_the_series_of_the_last_scrape() -> None:
    store, clock = MemoryStore(), FakeClock()
    with metrics_endpoint(HEALTHY) as endpoint:
        target = target_of(endpoint)
        scraper = Scraper(store, [target], ScrapeLimits(), clock=clock)
        assert (await scraper.scrape_once(target)).health == "up"
    # The endpoint is closed: nothing listens on its port any more.
    clock.advance()
    status = await scraper.scrape_once(target)

    assert status.health == "down"
    assert status.last_error is not None
    assert f"127.0.0.1:{target.instance.rsplit(':', 1)[1]}" in status.last_error
    assert only(samples_of(store, "up")) == [(T0, 1.0), (T0 + STEP, 0.0)]
    for series in [
        *samples_of(store, "http_requests_total").values(),
        *samples_of(store, "queue_depth").values(),
    ]:
        assert len(series) == 2
        t, value = series[-1]
        assert t == T0 + STEP
        assert is_stale(value)

    # A second failure has nothing left to end: no further markers.
    clock.advance()
    await scraper.scrape_once(target)
    assert len(only(samples_of(store, "queue_depth"))) == 2
    # The synthetic series are never marked stale by a failed scrape: they report it.
    assert [v for _, v in only(samples_of(store, "up"))] == [1.0, 0.0, 0.0]
    await scraper.stop()


# --- labels and timestamps -------------------------------------------------------------------


async def test_exposed_labels_clashing_with_target_labels_are_kept_as_exported(
    endpoint: MetricsEndpoint,
) -> None:
    endpoint.serve(
        'pushed{job="batch",instance="worker-1"} 1\nrelayed{job="cron",exported_job="older"} 2\n'
    )
    store = MemoryStore()
    target = target_of(endpoint)
    scraper = Scraper(store, [target], ScrapeLimits(), clock=FakeClock())

    await scraper.scrape_once(target)

    assert list(samples_of(store, "pushed")) == [
        labels(
            __name__="pushed",
            job="api",
            instance=target.instance,
            exported_job="batch",
            exported_instance="worker-1",
        )
    ]
    assert list(samples_of(store, "relayed")) == [
        labels(
            __name__="relayed",
            job="api",
            instance=target.instance,
            exported_job="older",
            exported_exported_job="cron",
        )
    ]
    await scraper.stop()


async def test_openmetrics_timestamps_are_kept_and_such_series_do_not_go_stale(
    endpoint: MetricsEndpoint,
) -> None:
    endpoint.serve(
        "# TYPE batch_last_success gauge\n"
        "batch_last_success 1699999990 1699999990.5\n"
        "# TYPE queue_depth gauge\n"
        "queue_depth 4\n"
        "# EOF\n",
        content_type=OPENMETRICS_FORMAT,
    )
    store, clock = MemoryStore(), FakeClock()
    target = target_of(endpoint)
    scraper = Scraper(store, [target], ScrapeLimits(), clock=clock)

    status = await scraper.scrape_once(target)

    assert status.health == "up", status.last_error
    assert only(samples_of(store, "batch_last_success")) == [(1_699_999_990_500, 1699999990.0)]
    assert only(samples_of(store, "queue_depth")) == [(T0, 4.0)]

    # As in Prometheus, a series with its own timestamps gets no stale marker when it goes.
    endpoint.serve(
        "# TYPE queue_depth gauge\nqueue_depth 5\n# EOF\n", content_type=OPENMETRICS_FORMAT
    )
    clock.advance()
    await scraper.scrape_once(target)
    assert only(samples_of(store, "batch_last_success")) == [(1_699_999_990_500, 1699999990.0)]
    await scraper.stop()


# --- staleness -------------------------------------------------------------------------------


async def test_vanished_series_gets_a_stale_marker_at_the_next_scrape(
    endpoint: MetricsEndpoint,
) -> None:
    endpoint.serve('jobs_running{queue="mail"} 2\njobs_running{queue="sms"} 1\n')
    store, clock = MemoryStore(), FakeClock()
    target = target_of(endpoint)
    scraper = Scraper(store, [target], ScrapeLimits(), clock=clock)
    await scraper.scrape_once(target)

    endpoint.serve('jobs_running{queue="mail"} 3\n')
    clock.advance()
    await scraper.scrape_once(target)

    by_queue = {dict(k)["queue"]: v for k, v in samples_of(store, "jobs_running").items()}
    assert by_queue["mail"] == [(T0, 2.0), (T0 + STEP, 3.0)]
    [(t1, v1), (t2, v2)] = by_queue["sms"]
    assert (t1, v1) == (T0, 1.0)
    assert t2 == T0 + STEP
    assert is_stale(v2)
    assert not is_stale(by_queue["mail"][-1][1])

    # Back again: a fresh sample after the marker, and no marker for the one still there.
    endpoint.serve('jobs_running{queue="mail"} 3\njobs_running{queue="sms"} 7\n')
    clock.advance()
    await scraper.scrape_once(target)
    by_queue = {dict(k)["queue"]: v for k, v in samples_of(store, "jobs_running").items()}
    assert by_queue["sms"][-1] == (T0 + 2 * STEP, 7.0)
    assert len(by_queue["sms"]) == 3
    assert only(samples_of(store, "scrape_series_added"))[-1] == (T0 + 2 * STEP, 1.0)
    await scraper.stop()


async def test_failed_scrape_marks_every_series_of_the_last_good_one_stale(
    endpoint: MetricsEndpoint,
) -> None:
    store, clock = MemoryStore(), FakeClock()
    target = target_of(endpoint)
    scraper = Scraper(store, [target], ScrapeLimits(), clock=clock)
    await scraper.scrape_once(target)

    endpoint.serve("<html>maintenance</html>", content_type="text/html")
    clock.advance()
    await scraper.scrape_once(target)

    at_failure = values_at(store, "http_requests_total", T0 + STEP)
    assert len(at_failure) == 2
    assert all(is_stale(v) for v in at_failure.values())
    assert is_stale(only(samples_of(store, "queue_depth"))[-1][1])
    assert only(samples_of(store, "up"))[-1] == (T0 + STEP, 0.0)

    # Recovery: samples again. The series were all in the last good scrape, so none is new.
    endpoint.serve(HEALTHY)
    clock.advance()
    status = await scraper.scrape_once(target)
    assert status.health == "up"
    assert only(samples_of(store, "queue_depth"))[-1] == (T0 + 2 * STEP, 4.0)
    assert only(samples_of(store, "scrape_series_added"))[-1] == (T0 + 2 * STEP, 0.0)
    await scraper.stop()


async def test_stop_writes_stale_markers_for_every_series_and_flushes(
    tmp_path: Path, endpoint: MetricsEndpoint
) -> None:
    path = tmp_path / "metrics.duckdb"
    clock = FakeClock()
    with EmbeddedStore.open(path, clock=clock) as store:
        target = target_of(endpoint, interval_s=0.2, timeout_s=0.2)
        scraper = Scraper(store, [target], ScrapeLimits(), clock=clock)
        await scraper.start()
        await wait_for(lambda: scraper.statuses()[0].health == "up")
        await scraper.stop()
        # Stop marks everything stale strictly after the last samples (the clock stood still).
        for name in ["up", "queue_depth", "scrape_duration_seconds", "http_requests_total"]:
            stored = samples_of(store, name)
            assert stored, name
            for points in stored.values():
                t, value = points[-1]
                assert t == T0 + 1
                assert is_stale(value)
                assert not is_stale(points[-2][1])
        count = len(only(samples_of(store, "queue_depth")))
        # Stopping again writes nothing more.
        await scraper.stop()
        assert len(only(samples_of(store, "queue_depth"))) == count
    # Flushed: the markers are in the file.
    with EmbeddedStore.open(path, clock=clock) as reopened:
        points = only(samples_of(reopened, "queue_depth"))
        assert len(points) == count
        assert is_stale(points[-1][1])
        assert points[-1][0] == T0 + 1


# --- the loop --------------------------------------------------------------------------------


async def test_loop_logs_a_crashed_iteration_and_goes_on(endpoint: MetricsEndpoint) -> None:
    store = FlakyStore()
    target = target_of(endpoint, interval_s=0.3, timeout_s=0.3)
    scraper = Scraper(store, [target], ScrapeLimits())
    with capture_logs() as logs:
        await scraper.start()
        await wait_for(lambda: scraper.statuses()[0].health == "up")
        await scraper.stop()
    assert store.appends >= 3  # the crash, a good scrape, the stale markers on stop
    crashes = [entry for entry in logs if entry["event"].startswith("scrape crashed")]
    assert len(crashes) == 1
    assert crashes[0]["job"] == "api"
    assert crashes[0]["log_level"] == "error"


async def test_start_twice_is_refused_and_loops_scrape_every_target() -> None:
    with metrics_endpoint(HEALTHY) as first, metrics_endpoint(HEALTHY) as second:
        store = MemoryStore()
        targets = [
            target_of(first, "one", interval_s=0.3, timeout_s=0.3),
            target_of(second, "two", interval_s=0.3, timeout_s=0.3),
        ]
        scraper = Scraper(store, targets, ScrapeLimits())
        await scraper.start()
        with pytest.raises(RuntimeError, match="already running"):
            await scraper.start()
        await wait_for(lambda: len(first.requests) >= 2 and len(second.requests) >= 2)
        await scraper.stop()
        assert {s.health for s in scraper.statuses()} == {"up"}


def test_scrape_offset_is_stable_and_within_the_interval() -> None:
    target = make_target(
        "api", "http://10.0.0.1:9100/metrics", timedelta(seconds=15), timedelta(seconds=10)
    )
    first = scrape_offset_s(target, T0)
    assert 0 <= first < 15
    # Asked again later, it points at the same phase of the interval.
    later = scrape_offset_s(target, T0 + 4_000)
    assert later == pytest.approx((first - 4.0) % 15)
    other = make_target(
        "api", "http://10.0.0.2:9100/metrics", timedelta(seconds=15), timedelta(seconds=10)
    )
    assert scrape_offset_s(other, T0) != first


# --- status and credentials ------------------------------------------------------------------


async def test_statuses_report_each_target(endpoint: MetricsEndpoint) -> None:
    with metrics_endpoint("") as broken:
        broken.serve("nope", status=503)
        good = target_of(endpoint, labels={"team": "platform"})
        bad = target_of(broken, "exporter", interval_s=30, timeout_s=5)
        scraper = Scraper(MemoryStore(), [good, bad], ScrapeLimits(), clock=FakeClock())

        before = scraper.statuses()
        assert [s.health for s in before] == ["unknown", "unknown"]
        assert before[0].last_scrape_ms is None
        assert before[0].last_duration_s is None

        await scraper.scrape_once(good)
        await scraper.scrape_once(bad)
        statuses = scraper.statuses()
        await scraper.stop()

    assert statuses[0] == TargetStatus(
        job="api",
        instance=good.instance,
        url=good.url,
        labels=labels(job="api", instance=good.instance, team="platform"),
        health="up",
        last_scrape_ms=T0,
        last_duration_s=statuses[0].last_duration_s,
        last_error=None,
        samples=3,
        interval=timedelta(seconds=15),
        timeout=timedelta(seconds=2),
    )
    assert statuses[0].last_duration_s is not None
    assert statuses[1].health == "down"
    assert statuses[1].labels == labels(job="exporter", instance=bad.instance)
    assert statuses[1].last_error == "server returned HTTP status 503 Service Unavailable"
    assert statuses[1].samples == 0
    assert (statuses[1].interval, statuses[1].timeout) == (
        timedelta(seconds=30),
        timedelta(seconds=5),
    )
    # A snapshot: what the caller holds does not change under it.
    statuses[0].health = "changed"
    assert scraper.statuses()[0].health == "up"


async def test_credentials_in_the_url_are_used_but_never_shown(endpoint: MetricsEndpoint) -> None:
    url = endpoint.url.replace("http://", "http://scraper:hunter2secret@")
    target = make_target("api", url, timedelta(seconds=15), timedelta(seconds=2))
    endpoint.serve("denied", status=500)
    scraper = Scraper(MemoryStore(), [target], ScrapeLimits())
    with capture_logs() as logs:
        status = await scraper.scrape_once(target)
        await scraper.stop()

    assert endpoint.requests[0]["authorization"].startswith("Basic ")
    assert target.instance == f"127.0.0.1:{endpoint.port}"
    assert status.url == endpoint.url
    assert logs, "a failing target is logged"
    assert all("hunter2secret" not in repr(entry) for entry in logs)
    assert "hunter2secret" not in repr(status)


async def test_connection_errors_do_not_show_credentials() -> None:
    with metrics_endpoint() as endpoint:
        url = endpoint.url.replace("http://", "http://scraper:hunter2secret@")
    target = make_target("api", url, timedelta(seconds=15), timedelta(seconds=2))
    scraper = Scraper(MemoryStore(), [target], ScrapeLimits())
    with capture_logs() as logs:
        status = await scraper.scrape_once(target)
        await scraper.stop()
    assert status.health == "down"
    assert "hunter2secret" not in repr(status)
    assert all("hunter2secret" not in repr(entry) for entry in logs)


def test_redaction_removes_userinfo_only() -> None:
    assert redact_url("https://u:pw@host:8443/m?x=1") == "https://host:8443/m?x=1"
    assert redact_url("http://host/metrics") == "http://host/metrics"
    url = "https://scraper:s3cret@host/metrics"
    assert redact_text(f"GET {url} failed", url) == "GET https://host/metrics failed"
    assert redact_text("password s3cret rejected", url) == "password *** rejected"
    assert redact_text("no userinfo here", "https://host/metrics") == "no userinfo here"


async def test_duplicate_targets_are_scraped_once(endpoint: MetricsEndpoint) -> None:
    target = target_of(endpoint)
    twin = target_of(endpoint)
    scraper = Scraper(MemoryStore(), [target, twin], ScrapeLimits())
    assert scraper.targets == [target]
    assert len(scraper.statuses()) == 1
    await scraper.stop()


async def test_scraping_an_unknown_target_is_refused(endpoint: MetricsEndpoint) -> None:
    scraper = Scraper(MemoryStore(), [], ScrapeLimits())
    with pytest.raises(ValueError, match="not a target of this scraper"):
        await scraper.scrape_once(target_of(endpoint))
    await scraper.stop()


# --- the embedded store ----------------------------------------------------------------------


async def test_scrapes_into_the_embedded_store(tmp_path: Path, endpoint: MetricsEndpoint) -> None:
    clock = FakeClock()
    with EmbeddedStore.open(tmp_path / "metrics.duckdb", clock=clock) as store:
        target = target_of(endpoint)
        scraper = Scraper(store, [target], ScrapeLimits(), clock=clock)
        await scraper.scrape_once(target)
        endpoint.serve("queue_depth 9\n")
        clock.advance()
        await scraper.scrape_once(target)

        requests = samples_of(store, "http_requests_total")
        assert len(requests) == 2
        for points in requests.values():
            assert points[0][0] == T0
            assert points[1][0] == T0 + STEP
            assert is_stale(points[1][1])
        assert only(samples_of(store, "queue_depth")) == [(T0, 4.0), (T0 + STEP, 9.0)]
        assert [v for _, v in only(samples_of(store, "up"))] == [1.0, 1.0]
        await scraper.stop()
        marker = store.select([Matcher.equal("__name__", "up")], *FOREVER)[0]
        assert np.count_nonzero(marker.values != marker.values) == 1


# --- targets from the config -----------------------------------------------------------------


def test_targets_from_config() -> None:
    config = OpsbookConfig.model_validate(
        {
            "services": [
                {
                    "name": "api",
                    "url": "https://api.example.com/v1",
                    "metrics": {"url": "/metrics", "interval": "30s", "timeout": "5s"},
                    "labels": {"team": "platform", "tier": "1"},
                },
                {
                    "name": "worker",
                    "url": "http://worker.internal:8080",
                    "metrics": {"url": "http://worker.internal:9090/metrics"},
                },
                {"name": "site", "url": "https://example.com"},  # no metrics: not scraped
            ],
            "metrics": {
                "scrape_interval": "20s",
                "scrape_timeout": "30s",
                "targets": [
                    {"job": "node", "url": "http://10.0.0.5:9100/metrics"},
                    {
                        "job": "postgres",
                        "url": "http://[fd00::7]:9187/metrics",
                        "interval": "1m",
                        "timeout": "15s",
                        "labels": {"instance": "db-primary", "env": "prod"},
                    },
                ],
            },
        }
    )

    targets = {t.job: t for t in targets_from_config(config)}

    assert list(targets) == ["api", "worker", "node", "postgres"]
    assert targets["api"] == Target(
        job="api",
        instance="api.example.com:443",
        url="https://api.example.com/v1/metrics",
        interval=timedelta(seconds=30),
        timeout=timedelta(seconds=5),
        labels={"team": "platform", "tier": "1"},
    )
    # Left out by the service: the global scrape settings, the timeout capped at the interval.
    assert targets["worker"].url == "http://worker.internal:9090/metrics"
    assert targets["worker"].instance == "worker.internal:9090"
    assert (targets["worker"].interval, targets["worker"].timeout) == (
        timedelta(seconds=20),
        timedelta(seconds=20),
    )
    assert targets["node"] == Target(
        job="node",
        instance="10.0.0.5:9100",
        url="http://10.0.0.5:9100/metrics",
        interval=timedelta(seconds=20),
        timeout=timedelta(seconds=20),
        labels={},
    )
    postgres = targets["postgres"]
    assert postgres.instance == "db-primary"  # a configured instance label wins
    assert postgres.labels == {"env": "prod"}
    assert (postgres.interval, postgres.timeout) == (timedelta(minutes=1), timedelta(seconds=15))
    assert postgres.label_set() == labels(job="postgres", instance="db-primary", env="prod")
    assert targets["api"].label_set() == labels(
        job="api", instance="api.example.com:443", team="platform", tier="1"
    )


def test_instance_of_ipv6_and_default_ports() -> None:
    config = OpsbookConfig.model_validate(
        {
            "metrics": {
                "targets": [
                    {"job": "a", "url": "http://[fd00::7]:9187/metrics"},
                    {"job": "b", "url": "http://plain.example.com/metrics"},
                ]
            }
        }
    )
    assert [t.instance for t in targets_from_config(config)] == [
        "[fd00::7]:9187",
        "plain.example.com:80",
    ]
