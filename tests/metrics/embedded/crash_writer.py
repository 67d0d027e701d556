"""Child process of test_crash.py: appends and flushes batches until it is killed.

    python crash_writer.py STORE FIRST_BATCH

Batch k holds one sample per series at ``k * STEP_MS``; every third batch also rewrites the
samples of batch ``k - REWRITE_BACK`` (which by then may sit in a chunk). After each flush the
batch number is printed: that batch is acknowledged. The store's clock follows the batches, so
buckets close while it runs and flushes move head rows into chunks (compaction).
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import numpy as np

from opsbook.metrics.embedded import EmbeddedStore
from opsbook.metrics.embedded.store import close_delay_ms

SERIES = 400
STEP_MS = 250
REWRITE_BACK = 5
CHUNK = timedelta(seconds=1)
LABELS = [(("__name__", "crash_test"), ("series", f"s{i:04d}")) for i in range(SERIES)]


def value(batch: int, series: int, rewritten: bool) -> float:
    return batch * 1000.0 + series + (0.5 if rewritten else 0.0)


def rewrites(batch: int) -> bool:
    return batch % 3 == 0 and batch >= REWRITE_BACK


def main() -> None:
    path, first = Path(sys.argv[1]), int(sys.argv[2])
    batch = first
    delay_ms = close_delay_ms(int(CHUNK.total_seconds() * 1000))
    # Data time lags the clock by less than the close delay: the newest buckets stay open (head),
    # older ones close one by one and are compacted into chunks by the flushes.
    store = EmbeddedStore.open(
        path,
        retention=None,
        chunk=CHUNK,
        flush_interval_s=3600,
        clock=lambda: (batch * STEP_MS + delay_ms + 600) / 1000,
    )
    series_ids = np.arange(SERIES)
    while True:
        labels = list(LABELS)
        ts = [batch * STEP_MS] * SERIES
        vs = [value(batch, s, False) for s in series_ids.tolist()]
        if rewrites(batch):
            old = batch - REWRITE_BACK
            labels += LABELS
            ts += [old * STEP_MS] * SERIES
            vs += [value(old, s, True) for s in series_ids.tolist()]
        store.append(labels, ts, vs)
        store.flush()
        print(batch, flush=True)
        batch += 1


if __name__ == "__main__":
    main()
