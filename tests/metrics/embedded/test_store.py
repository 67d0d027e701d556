"""The embedded store through its public interface: durability, errors, retention, threads."""

from __future__ import annotations

import struct
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from opsbook.metrics.embedded import EmbeddedStore, MetricsStoreError, StoreInUseError
from opsbook.metrics.model import STALE_NAN, Labels, Matcher, MatchType, summarize_samples
from opsbook.metrics.store_api import SampleStore

UP: Labels = (("__name__", "up"), ("job", "api"))
DOWN: Labels = (("__name__", "up"), ("job", "web"))
HOUR_MS = 3_600_000
NOW_S = 1_750_000_000.0  # a fixed "now" for the stores' clocks
PAYLOAD_NAN = struct.unpack("<d", struct.pack("<Q", 0xFFF8000000000ABC))[0]


def bits(values: np.ndarray) -> list[int]:
    return values.view(np.uint64).tolist()


class Clock:
    def __init__(self, now: float = NOW_S) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_is_a_sample_store(tmp_path: Path) -> None:
    with EmbeddedStore.open(tmp_path / "m.duckdb") as store:
        assert isinstance(store, SampleStore)


def test_samples_survive_reopening_bit_for_bit(tmp_path: Path) -> None:
    """Closed buckets (chunks) and the open one (head) keep NaN payloads, -0.0 and infinities."""
    path = tmp_path / "m.duckdb"
    end_ms = int(NOW_S * 1000)
    ts = np.arange(end_ms - 4 * HOUR_MS, end_ms, 15_000, dtype=np.int64)
    values = np.cumsum(np.ones(len(ts)))
    values[[3, 500, -7]] = [STALE_NAN, PAYLOAD_NAN, -0.0]
    values[[10, -2]] = [np.inf, -np.inf]
    with EmbeddedStore.open(path, clock=Clock()) as store:
        store.append_series(UP, ts, values)
    with EmbeddedStore.open(path, clock=Clock()) as store:
        assert store.stats().chunks > 0 and store.stats().head_samples > 0
        (found,) = store.select([Matcher.equal("job", "api")], 0, end_ms)
    assert found.labels == UP
    assert found.timestamps.tolist() == ts.tolist()
    assert bits(found.values) == bits(values)


def test_a_sample_at_an_existing_timestamp_replaces_it_everywhere(tmp_path: Path) -> None:
    end_ms = int(NOW_S * 1000)
    old_t, new_t = end_ms - 2 * HOUR_MS, end_ms - 1000  # one in a chunk, one in the head
    with EmbeddedStore.open(tmp_path / "m.duckdb", clock=Clock()) as store:
        store.append([UP, UP], [old_t, new_t], [1.0, 2.0])
        store.flush()
        store.append([UP, UP], [old_t, new_t], [10.0, 20.0])
        assert store.select([], 0, end_ms)[0].values.tolist() == [10.0, 20.0]  # buffered
        store.flush()
        assert store.select([], 0, end_ms)[0].values.tolist() == [10.0, 20.0]
        (summary,) = store.summarize([], 0, end_ms)
        assert (summary.count, summary.sum) == (2, 30.0)


def test_decoded_chunks_are_reused_and_never_served_stale(tmp_path: Path) -> None:
    end_ms = int(NOW_S * 1000)
    ts = np.arange(end_ms - 3 * HOUR_MS, end_ms - HOUR_MS, 15_000, dtype=np.int64)
    clock = Clock()
    with EmbeddedStore.open(
        tmp_path / "m.duckdb", clock=clock, retention=timedelta(hours=4)
    ) as store:
        store.append_series(UP, ts, np.arange(len(ts), dtype=np.float64))
        store.flush()
        first = store.select([Matcher.equal("job", "api")], 0, end_ms)[0]
        again = store.select([Matcher.equal("job", "api")], 0, end_ms)[0]  # from the cache
        assert again.values.tolist() == first.values.tolist()
        # Rewriting a sample inside a closed chunk must show at once, not the cached chunk.
        store.append([UP], [int(ts[5])], [-1.0])
        store.flush()
        rewritten = store.select([Matcher.equal("job", "api")], 0, end_ms)[0]
        assert rewritten.values[5] == -1.0 and rewritten.values[6] == 6.0
        # So must chunks that retention deleted.
        clock.now += 2.5 * 3600
        store.apply_retention()
        remaining = store.select([Matcher.equal("job", "api")], 0, end_ms)
        kept = ts[ts >= (int(clock.now * 1000) - 4 * HOUR_MS) // 1_800_000 * 1_800_000]
        assert remaining[0].timestamps.tolist() == kept.tolist()


def test_reads_see_appends_before_any_flush(tmp_path: Path) -> None:
    with EmbeddedStore.open(tmp_path / "m.duckdb", flush_interval_s=3600) as store:
        store.append([UP, DOWN], [1000, 1000], [1.0, 0.0])
        assert [d.labels for d in store.select([Matcher.equal("__name__", "up")], 0, 2000)] == [
            UP,
            DOWN,
        ]
        assert store.label_values("job", [], 0, 2000) == ["api", "web"]
        assert store.stats().buffered_samples == 2


def test_the_background_thread_flushes(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    with EmbeddedStore.open(path, flush_interval_s=0.05) as store:
        store.append([UP], [1000], [1.0])
        for _ in range(200):
            if store.stats().buffered_samples == 0:
                break
            threading.Event().wait(0.05)
        assert store.stats().buffered_samples == 0


def test_a_second_process_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    code = (
        "import sys; from pathlib import Path\n"
        "from opsbook.metrics.embedded import EmbeddedStore, StoreInUseError\n"
        "try:\n"
        "    EmbeddedStore.open(Path(sys.argv[1]))\n"
        "except StoreInUseError as exc:\n"
        "    print(exc)\n"
    )
    with EmbeddedStore.open(path):
        result = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
        )
    assert result.stdout.startswith(f"the metrics store {path} is in use by another process")


def test_the_same_file_cannot_be_opened_twice_in_one_process(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    with (
        EmbeddedStore.open(path),
        pytest.raises(StoreInUseError, match="already open in this process"),
    ):
        EmbeddedStore.open(path)
    EmbeddedStore.open(path).close()  # closing released it


def test_a_foreign_file_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_text("not a database\n" * 1000)
    with pytest.raises(MetricsStoreError, match=str(path)):
        EmbeddedStore.open(path)


def test_closed_store_says_so(tmp_path: Path) -> None:
    store = EmbeddedStore.open(tmp_path / "m.duckdb")
    store.close()
    store.close()  # twice is fine
    with pytest.raises(MetricsStoreError, match="is closed"):
        store.append([UP], [1], [1.0])


def test_append_rejects_mismatched_lengths(tmp_path: Path) -> None:
    with EmbeddedStore.open(tmp_path / "m.duckdb") as store:
        with pytest.raises(ValueError, match="same length"):
            store.append([UP, DOWN], [1], [1.0, 2.0])
        with pytest.raises(ValueError, match="same length"):
            store.append_series(UP, np.array([1, 2]), np.array([1.0]))


def test_retention_deletes_old_samples_and_forgets_empty_series(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    now_ms = int(NOW_S * 1000)
    with EmbeddedStore.open(
        tmp_path / "m.duckdb", retention=timedelta(hours=2), clock=clock
    ) as store:
        store.append([UP, DOWN], [now_ms - 90 * 60_000, now_ms - 60_000], [1.0, 2.0])
        store.append([UP], [now_ms - 3 * HOUR_MS], [0.5])  # already past the retention
        store.flush()
        assert "dropped 1 samples older than the retention" in caplog.text
        assert store.series([], 0, now_ms) == [UP, DOWN]

        clock.now += 3600  # UP's sample is now older than two hours
        store.apply_retention()
        assert store.series([], 0, now_ms) == [DOWN]
        assert store.label_values("job", [], 0, now_ms) == ["web"]
        assert store.stats().series == 1
        # A forgotten series comes back when it is written again.
        store.append([UP], [now_ms], [3.0])
        assert sorted(d.labels for d in store.select([], 0, now_ms)) == [UP, DOWN]


def test_the_file_stops_growing_under_steady_ingest_with_retention(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "m.duckdb"
    labels = [(("__name__", "load"), ("i", str(i))) for i in range(300)]
    sizes = []
    with EmbeddedStore.open(
        path, retention=timedelta(seconds=30), chunk=timedelta(seconds=1), clock=clock
    ) as store:
        for step in range(240):
            t_ms = int(clock.now * 1000)
            ts = np.repeat(t_ms + np.arange(4) * 250, len(labels))
            store.append(labels * 4, ts, np.arange(len(ts), dtype=np.float64) + step)
            store.flush()
            if step % 10 == 0:  # as the background thread would, every so often
                store.apply_retention()
            clock.now += 1.0
            wal = path.with_name(path.name + ".wal")
            sizes.append(path.stat().st_size + (wal.stat().st_size if wal.exists() else 0))
    assert max(sizes[120:]) <= 1.2 * max(sizes[:120]), [f"{s:,}" for s in sizes[::10]]


def test_summaries_over_whole_buckets_use_the_rollups_and_agree_with_raw(tmp_path: Path) -> None:
    end_ms = int(NOW_S * 1000)
    rng = np.random.default_rng(5)
    ts = np.arange(end_ms - 48 * HOUR_MS, end_ms, 15_000, dtype=np.int64)
    counter = np.cumsum(rng.poisson(3, len(ts))).astype(np.float64)
    counter[5000:] -= counter[5000]  # a counter reset
    with EmbeddedStore.open(tmp_path / "m.duckdb", clock=Clock()) as store:
        store.append_series(UP, ts, counter)
        store.flush()
        for start, end in [(0, end_ms), (end_ms - 30 * HOUR_MS + 7, end_ms - 5 * HOUR_MS - 3)]:
            (got,) = store.summarize([Matcher("job", MatchType.REGEX, "a.*")], start, end)
            keep = (ts > start) & (ts <= end)
            want = summarize_samples(UP, ts[keep], counter[keep])
            assert want is not None
            assert (got.count, got.resets, got.first_t, got.last_t) == (
                want.count,
                want.resets,
                want.first_t,
                want.last_t,
            )
            assert got.increase == pytest.approx(want.increase)
            assert got.sum == pytest.approx(want.sum)


def test_concurrent_appends_and_reads(tmp_path: Path) -> None:
    """Readers in worker threads while the writer appends and flushes: no errors, no loss."""
    errors: list[BaseException] = []
    with EmbeddedStore.open(tmp_path / "m.duckdb", retention=None, flush_interval_s=0.01) as store:
        done = threading.Event()

        def read() -> None:
            try:
                while not done.is_set():
                    for data in store.select([Matcher.equal("__name__", "up")], 0, 10**7):
                        assert np.all(np.diff(data.timestamps) > 0)
                    store.summarize([], 0, 10**7)
            except BaseException as exc:
                errors.append(exc)

        readers = [threading.Thread(target=read) for _ in range(3)]
        for reader in readers:
            reader.start()
        for step in range(300):
            store.append([UP, DOWN], [step * 1000, step * 1000], [float(step), 1.0])
        done.set()
        for reader in readers:
            reader.join()
        store.flush()
        assert not errors, errors
        found = store.select([], 0, 10**7)
        assert [len(d.timestamps) for d in found] == [300, 300]


def test_large_reads_of_scattered_series_come_back_in_place(tmp_path: Path) -> None:
    """Hundreds of thousands of chunk rows, selected through a join on the matched ids: every
    sample lands at its own series and timestamp."""
    end_ms = int(NOW_S * 1000)
    # One-second chunks: 3000 series x 80 buckets are more chunk rows than one row group.
    ts = np.arange(end_ms - 100_000, end_ms - 20_000, 500, dtype=np.int64)
    labels = [(("__name__", "m"), ("i", f"{i:04d}")) for i in range(3000)]
    with EmbeddedStore.open(
        tmp_path / "m.duckdb", chunk=timedelta(seconds=1), clock=Clock()
    ) as store:
        for number, series in enumerate(labels):
            store.append_series(series, ts, number * 1e6 + np.arange(len(ts), dtype=np.float64))
        store.flush()
        odd = Matcher("i", MatchType.REGEX, ".*[13579]")
        found = store.select([odd], ts[0], ts[-1])
    assert len(found) == 1500
    for data in found:
        number = int(data.labels[1][1])
        assert number % 2 == 1
        assert data.timestamps.tolist() == ts.tolist()
        assert data.values.tolist() == (number * 1e6 + np.arange(len(ts))).tolist()
