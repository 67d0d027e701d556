"""The embedded store answers exactly like the in-memory reference store.

Random writes (out of order, duplicate timestamps, stale markers, NaN, infinities), flushes,
reopens and clock moves go to both stores; then every read method is compared over random
ranges and matchers. A one-second chunk makes the writes cross many buckets, so samples go
through the buffer, the head, the chunks and the merges between them.
"""

from __future__ import annotations

import struct
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsbook.metrics.embedded import EmbeddedStore
from opsbook.metrics.memory import MemoryStore
from opsbook.metrics.model import STALE_NAN, Labels, Matcher, MatchType
from tests.metrics.embedded.compare import assert_same_series, assert_same_summaries

PAYLOAD_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000123))[0]
SERIES: list[Labels] = [
    (("__name__", name), *((("job", job),) if job else ()), ("zone", zone))
    for name in ("up", "http_requests_total")
    for job in ("api", "web", "")
    for zone in ("a", "b")
]
LABEL_VALUES = ["up", "http_requests_total", "api", "web", "a", "b", "", "zzz"]
PATTERNS = [".*", ".+", "a|b", "api|zzz", "http.*", "w.b", "(up)?"]

values = st.one_of(
    st.sampled_from([STALE_NAN, float("nan"), PAYLOAD_NAN, float("inf"), float("-inf"), -0.0]),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(0, 50).map(float),
)
# Timestamps over ~20 one-second buckets; the clock (below) decides which buckets are closed.
timestamps = st.integers(-3_000, 17_000)


@dataclass
class Append:
    rows: list[tuple[int, int, float]]


@dataclass
class AppendSeries:
    series: int
    timestamps: list[int]
    values: list[float]


@dataclass
class Flush:
    pass


@dataclass
class Reopen:
    pass


@dataclass
class Tick:
    seconds: float


operations = st.lists(
    st.one_of(
        st.builds(
            Append,
            st.lists(st.tuples(st.integers(0, len(SERIES) - 1), timestamps, values), max_size=25),
        ),
        st.integers(0, len(SERIES) - 1).flatmap(
            lambda i: st.lists(st.tuples(timestamps, values), max_size=40).map(
                lambda rows: AppendSeries(i, [t for t, _ in rows], [v for _, v in rows])
            )
        ),
        st.just(Flush()),
        st.just(Reopen()),
        st.builds(Tick, st.floats(0, 6)),
    ),
    max_size=12,
)

matchers = st.lists(
    st.one_of(
        st.builds(
            Matcher,
            st.sampled_from(["__name__", "job", "zone", "missing"]),
            st.sampled_from([MatchType.EQUAL, MatchType.NOT_EQUAL]),
            st.sampled_from(LABEL_VALUES),
        ),
        st.builds(
            Matcher,
            st.sampled_from(["__name__", "job", "zone", "missing"]),
            st.sampled_from([MatchType.REGEX, MatchType.NOT_REGEX]),
            st.sampled_from(PATTERNS),
        ),
    ),
    max_size=3,
)
ranges = st.tuples(st.integers(-4_000, 18_000), st.integers(0, 22_000)).map(
    lambda r: (r[0], r[0] + r[1])
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _open(path: Path, clock: Clock) -> EmbeddedStore:
    return EmbeddedStore.open(
        path, retention=None, chunk=timedelta(seconds=1), clock=clock, flush_interval_s=3600
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=operations,
    clock_start=st.floats(-5, 20),
    queries=st.lists(st.tuples(matchers, ranges), min_size=1, max_size=4),
    metadata_sets=st.lists(matchers, max_size=2),
)
def test_every_read_matches_the_reference_store(
    ops: list[object],
    clock_start: float,
    queries: list[tuple[list[Matcher], tuple[int, int]]],
    metadata_sets: list[list[Matcher]],
) -> None:
    reference = MemoryStore()
    clock = Clock()
    # A bucket closes a second after its end: at 18 s every bucket above is closed.
    clock.now = clock_start
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "metrics.duckdb"
        store = _open(path, clock)
        try:
            for op in ops:
                if isinstance(op, Append):
                    labels = [SERIES[i] for i, _, _ in op.rows]
                    ts = [t for _, t, _ in op.rows]
                    vs = [v for _, _, v in op.rows]
                    store.append(labels, ts, vs)
                    reference.append(labels, ts, vs)
                elif isinstance(op, AppendSeries):
                    ts_array = np.array(op.timestamps, dtype=np.int64)
                    vs_array = np.array(op.values, dtype=np.float64)
                    store.append_series(SERIES[op.series], ts_array, vs_array)
                    reference.append([SERIES[op.series]] * len(ts_array), ts_array, vs_array)
                elif isinstance(op, Flush):
                    store.flush()
                elif isinstance(op, Reopen):
                    store.close()
                    store = _open(path, clock)
                elif isinstance(op, Tick):
                    clock.now += op.seconds
            for query_matchers, (start, end) in queries:
                assert_same_series(
                    store.select(query_matchers, start, end),
                    reference.select(query_matchers, start, end),
                )
                assert_same_summaries(
                    store.summarize(query_matchers, start, end),
                    reference.summarize(query_matchers, start, end),
                )
            start, end = queries[0][1]
            assert store.series(metadata_sets, start, end) == reference.series(
                metadata_sets, start, end
            )
            assert store.label_names(metadata_sets, start, end) == reference.label_names(
                metadata_sets, start, end
            )
            for name in ("job", "zone", "__name__"):
                assert store.label_values(name, metadata_sets, start, end) == (
                    reference.label_values(name, metadata_sets, start, end)
                )
            # Everything again from the file alone.
            store.close()
            store = _open(path, clock)
            for query_matchers, (start, end) in queries:
                assert_same_series(
                    store.select(query_matchers, start, end),
                    reference.select(query_matchers, start, end),
                )
        finally:
            store.close()
