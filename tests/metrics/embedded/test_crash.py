"""kill -9 of a process writing the store: it reopens cleanly with every acknowledged batch.

The writer (crash_writer.py) flushes a batch, then prints its number. It is killed at random
moments, including inside flushes that compact head rows into chunks; after each kill the file
is opened again, checked, and handed to the next writer.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from opsbook.metrics.embedded import EmbeddedStore
from opsbook.metrics.model import Matcher, summarize_samples
from tests.metrics.embedded import crash_writer as writer
from tests.metrics.embedded.compare import assert_same_summaries

REPO = Path(__file__).resolve().parents[3]
ROUNDS = 6


def _run_until_killed(path: Path, first: int, rng: random.Random) -> int:
    """Start a writer at batch ``first``, kill it at a random moment; the last acked batch."""
    child = subprocess.Popen(
        [sys.executable, str(Path(writer.__file__)), str(path), str(first)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert child.stdout is not None
    wanted = rng.randint(3, 25)
    acked = first - 1
    try:
        for line in child.stdout:
            acked = int(line)
            if acked - first + 1 >= wanted:
                break
        time.sleep(rng.uniform(0, 0.05))  # land anywhere: between flushes or inside one
        child.send_signal(signal.SIGKILL)
        # Acknowledgements printed before the kill count too.
        for line in child.stdout:
            acked = int(line)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL, "the writer stopped before it was killed"
    return acked


def _check(path: Path, acked: int) -> int:
    """Every acknowledged batch is there, with its rewrites; rollups agree with raw samples."""
    with EmbeddedStore.open(path, retention=None, flush_interval_s=3600) as store:
        found = store.select([Matcher.equal("__name__", "crash_test")], 0, 10**12)
        assert len(found) == writer.SERIES
        newest = 0
        for data in found:
            series = int(data.labels[1][1][1:])
            batches = data.timestamps // writer.STEP_MS
            newest = max(newest, int(batches.max()))
            assert set(range(acked + 1)) <= set(batches.tolist()), "an acknowledged batch is lost"
            for batch, value in zip(batches.tolist(), data.values.tolist(), strict=True):
                rewritten_by = batch + writer.REWRITE_BACK
                options = {writer.value(batch, series, False)}
                if writer.rewrites(rewritten_by) and rewritten_by <= newest + 1:
                    if rewritten_by <= acked:
                        options = {writer.value(batch, series, True)}
                    else:  # the rewriting batch was not acknowledged: either value
                        options.add(writer.value(batch, series, True))
                assert value in options, (series, batch, value, options)
        # At most the batch in flight beyond the acknowledged ones.
        assert newest <= acked + 1
        everything = store.summarize([Matcher.equal("__name__", "crash_test")], -1, 10**12)
        expected = [summarize_samples(d.labels, d.timestamps, d.values) for d in found]
        assert_same_summaries(everything, [s for s in expected if s is not None])
        return newest


@pytest.mark.slow
def test_kill_minus_nine_loses_at_most_the_unflushed_batch(tmp_path: Path) -> None:
    rng = random.Random(20240601)
    path = tmp_path / "metrics.duckdb"
    next_batch = 0
    for _ in range(ROUNDS):
        acked = _run_until_killed(path, next_batch, rng)
        newest = _check(path, acked)
        next_batch = max(acked, newest) + 1
    assert next_batch > ROUNDS * 3
    stats_store = EmbeddedStore.open(path, retention=None)
    try:
        stats = stats_store.stats()
        assert stats.chunks > 0, "no compaction happened: the test did not cover it"
    finally:
        stats_store.close()
    assert np.isfinite(stats.file_bytes)
