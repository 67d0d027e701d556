"""Pure NumPy work of the embedded store: ordering, de-duplication, chunks and rollups.

Nothing here touches the database, so it is tested (and reasoned about) on arrays alone.

Vocabulary:

- *samples*: flat arrays ``(series_ids, timestamps, values)``, one element per sample.
- *chunk*: the samples of one series in one aligned time bucket of ``chunk_ms``. On disk a chunk
  is one row with the samples as two lists (timestamp deltas and values) plus its rollup.
- *rollup* / *summary*: the :class:`~opsbook.metrics.model.RangeSummary` fields of a run of
  samples, as parallel arrays (:class:`Summaries`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from opsbook.metrics.model import STALE_NAN_BITS

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

_STALE = np.uint64(STALE_NAN_BITS)
_INT_LIMIT = 2.0**52  # differences of such integers are still exact float64 integers


@dataclass(frozen=True, slots=True)
class Samples:
    """Flat samples; after :func:`latest_per_timestamp` sorted by (series id, timestamp)."""

    series_ids: I64
    timestamps: I64
    values: F64

    def __len__(self) -> int:
        return len(self.timestamps)

    def take(self, selection: I64 | Mask | slice) -> Samples:
        return Samples(
            self.series_ids[selection], self.timestamps[selection], self.values[selection]
        )

    def split(self, mask: Mask) -> tuple[Samples, Samples]:
        """(the samples where ``mask`` holds, the others), without copies when one is empty."""
        if mask.all():
            return self, Samples.empty()
        if not mask.any():
            return Samples.empty(), self
        return self.take(mask), self.take(~mask)

    @staticmethod
    def empty() -> Samples:
        return Samples(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))

    @staticmethod
    def concat(parts: list[Samples]) -> Samples:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Samples.empty()
        if len(parts) == 1:
            return parts[0]
        return Samples(
            np.concatenate([p.series_ids for p in parts]),
            np.concatenate([p.timestamps for p in parts]),
            np.concatenate([p.values for p in parts]),
        )


def stale(values: F64) -> Mask:
    mask: Mask = values.view(np.uint64) == _STALE
    return mask


def latest_per_timestamp(samples: Samples) -> Samples:
    """Sort by (series id, timestamp); of samples sharing both, keep the one that came last.

    The input order is the write order, so "came last" is "written last": a sample at a
    timestamp the series already has replaces the old one.
    """
    sid, ts = samples.series_ids, samples.timestamps
    if len(ts) > 1 and _is_sorted_strictly(sid, ts):
        return samples
    order = np.lexsort((ts, sid))  # stable: equal keys keep their write order
    sid, ts = sid[order], ts[order]
    keep = np.ones(len(order), dtype=bool)
    keep[:-1] = (sid[1:] != sid[:-1]) | (ts[1:] != ts[:-1])
    if keep.all():
        return Samples(sid, ts, samples.values[order])
    order = order[keep]
    return Samples(sid[keep], ts[keep], samples.values[order])


def _is_sorted_strictly(sid: I64, ts: I64) -> bool:
    same_series = sid[1:] == sid[:-1]
    if np.any(sid[1:] < sid[:-1]):
        return False
    return not np.any(same_series & (ts[1:] <= ts[:-1]))


def run_starts(*keys: I64) -> I64:
    """Start offsets of the runs of equal ``keys`` tuples (arrays of equal length, non-empty)."""
    change = np.zeros(len(keys[0]), dtype=bool)
    change[0] = True
    for key in keys:
        change[1:] |= key[1:] != key[:-1]
    return np.flatnonzero(change)


def buckets_of(timestamps: I64, chunk_ms: int) -> I64:
    return timestamps // chunk_ms


@dataclass(frozen=True, slots=True)
class Summaries:
    """One :class:`~opsbook.metrics.model.RangeSummary` per row, minus the labels."""

    series_ids: I64
    count: I64
    first_t: I64
    first_v: F64
    last_t: I64
    last_v: F64
    sum: F64
    min: F64
    max: F64
    increase: F64
    resets: I64
    changes: I64

    def __len__(self) -> int:
        return len(self.series_ids)

    def take(self, selection: I64 | Mask) -> Summaries:
        return Summaries(*(getattr(self, f.name)[selection] for f in fields(Summaries)))

    @staticmethod
    def concat(parts: list[Summaries]) -> Summaries:
        names = [f.name for f in fields(Summaries)]
        return Summaries(*(np.concatenate([getattr(p, n) for p in parts]) for n in names))


def summarize_runs(series_ids: I64, starts: I64, timestamps: I64, values: F64) -> Summaries:
    """The summary of each run ``values[starts[i]:starts[i+1]]`` (stale markers skipped).

    ``series_ids`` has one entry per run. A run of stale markers only has ``count`` 0; its other
    fields are meaningless. Matches :func:`~opsbook.metrics.model.summarize_samples`, except
    that sums may round differently.
    """
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN, as in the model
        return _summarize_runs(series_ids, starts, timestamps, values)


def _summarize_runs(series_ids: I64, starts: I64, timestamps: I64, values: F64) -> Summaries:
    runs = len(starts)
    lengths = np.diff(np.append(starts, len(values)))
    is_stale = stale(values)
    if is_stale.any():
        keep = ~is_stale
        run_of = np.repeat(np.arange(runs), lengths)
        count = np.bincount(run_of[keep], minlength=runs).astype(np.int64)
        t_k, v_k = timestamps[keep], values[keep]
        k_starts = np.cumsum(count) - count
    else:
        count, t_k, v_k, k_starts = lengths.astype(np.int64), timestamps, values, starts
    nonempty = count > 0
    at = k_starts[nonempty]
    last = at + count[nonempty] - 1

    first_t = np.zeros(runs, np.int64)
    last_t = np.zeros(runs, np.int64)
    first_v, last_v, total, low, high, increase = (np.full(runs, np.nan) for _ in range(6))
    resets = np.zeros(runs, np.int64)
    changes = np.zeros(runs, np.int64)
    if len(at):
        first_t[nonempty], first_v[nonempty] = t_k[at], v_k[at]
        last_t[nonempty], last_v[nonempty] = t_k[last], v_k[last]
        total[nonempty] = np.add.reduceat(v_k, at)
        low[nonempty] = np.fmin.reduceat(v_k, at)
        high[nonempty] = np.fmax.reduceat(v_k, at)
        # Pair i is (v_k[i], v_k[i+1]); pairs that straddle two runs are zeroed out. One
        # trailing zero keeps every run's first index a valid reduceat index.
        prev, cur = v_k[:-1], v_k[1:]
        dropped = np.zeros(len(v_k), bool)
        dropped[:-1] = cur < prev
        terms = np.zeros(len(v_k))
        terms[:-1] = np.where(dropped[:-1], cur, cur - prev)
        changed = np.zeros(len(v_k), bool)
        changed[:-1] = (cur != prev) & ~(np.isnan(cur) & np.isnan(prev))
        straddling = at[1:] - 1
        terms[straddling] = 0.0
        dropped[straddling] = changed[straddling] = False
        increase[nonempty] = np.add.reduceat(terms, at)
        resets[nonempty] = np.add.reduceat(dropped, at, dtype=np.int64)
        changes[nonempty] = np.add.reduceat(changed, at, dtype=np.int64)
    increase[~nonempty] = 0.0
    return Summaries(
        series_ids=series_ids,
        count=count,
        first_t=first_t,
        first_v=first_v,
        last_t=last_t,
        last_v=last_v,
        sum=total,
        min=low,
        max=high,
        increase=increase,
        resets=resets,
        changes=changes,
    )


def combine_summaries(parts: Summaries) -> Summaries:
    """Fold consecutive rows of one series into one summary per series.

    ``parts`` must be sorted by (series id, first_t) with non-overlapping time spans per series
    and ``count > 0`` everywhere. The increase, resets and changes across the boundary between
    two rows (the last sample of one and the first of the next) are added as
    :func:`summarize_runs` would count them inside one run.
    """
    if len(parts) == 0:
        return parts
    with np.errstate(invalid="ignore", over="ignore"):
        return _combine(parts)


def _combine(parts: Summaries) -> Summaries:
    starts = run_starts(parts.series_ids)
    ends = np.append(starts[1:], len(parts)) - 1
    groups = len(starts)
    group_of = np.repeat(np.arange(groups), np.diff(np.append(starts, len(parts))))

    prev, cur = parts.last_v[:-1], parts.first_v[1:]
    inner = group_of[1:] == group_of[:-1]
    boundary_group = group_of[1:][inner]
    prev, cur = prev[inner], cur[inner]
    dropped = cur < prev
    boundary_increase = np.bincount(
        boundary_group, weights=np.where(dropped, cur, cur - prev), minlength=groups
    )
    changed = (cur != prev) & ~(np.isnan(cur) & np.isnan(prev))
    return Summaries(
        series_ids=parts.series_ids[starts],
        count=np.add.reduceat(parts.count, starts),
        first_t=parts.first_t[starts],
        first_v=parts.first_v[starts],
        last_t=parts.last_t[ends],
        last_v=parts.last_v[ends],
        sum=np.add.reduceat(parts.sum, starts),
        min=np.fmin.reduceat(parts.min, starts),
        max=np.fmax.reduceat(parts.max, starts),
        increase=np.add.reduceat(parts.increase, starts) + boundary_increase,
        resets=np.add.reduceat(parts.resets, starts)
        + np.bincount(boundary_group[dropped], minlength=groups),
        changes=np.add.reduceat(parts.changes, starts)
        + np.bincount(boundary_group[changed], minlength=groups),
    )


@dataclass(frozen=True, slots=True)
class EncodedChunks:
    """Chunks ready to insert: one entry per chunk in the ``chunk_*`` arrays and the rollup,
    one per sample in ``deltas``/``values``, one per NaN sample in ``nan_*``.

    - ``deltas[i]`` is ``t[i] - t[i-1]``; a chunk's first entry repeats its second delta (0 for
      a one-sample chunk), so that it costs no extra bits in the column's bit-packing.
    - NaN values (stale markers included) are replaced by a neighbouring number in ``values``
      (DuckDB reads NaN from NumPy as NULL, and a constant keeps the compression tight); their
      positions inside the chunk and their exact bit patterns are kept in ``nan_pos`` and
      ``nan_bits``.
    - A chunk whose values are all integers of magnitude up to 2**52 (counters, histogram
      buckets) stores the differences between consecutive values instead (``int_deltas``;
      the first is 0 and ``base`` holds the first value): a counter at ten million that grows
      by 60 a scrape then packs into 7 bits instead of 24. Integer arithmetic makes the round
      trip exact.
    """

    chunk_of_sample: I64
    buckets: I64
    t_first: I64
    t_last: I64
    lengths: I64
    rollup: Summaries
    int_deltas: Mask
    base: F64
    deltas: I64
    values: F64
    nan_chunk: I64
    nan_pos: I64
    nan_bits: I64

    def __len__(self) -> int:
        return len(self.buckets)


def encode_chunks(samples: Samples, chunk_ms: int, buckets: I64 | None = None) -> EncodedChunks:
    """Cut samples sorted by (series id, timestamp), without duplicates, into chunks.

    ``buckets`` are the samples' buckets when the caller has them already.
    """
    sid, ts, vs = samples.series_ids, samples.timestamps, samples.values
    if buckets is None:
        buckets = buckets_of(ts, chunk_ms)
    starts = run_starts(sid, buckets)
    rollup = summarize_runs(sid[starts], starts, ts, vs)
    ends = np.append(starts[1:], len(ts))
    lengths = ends - starts
    chunk_of_sample = np.repeat(np.arange(len(starts)), lengths)

    deltas = np.empty(len(ts), np.int64)
    deltas[1:] = ts[1:] - ts[:-1]
    second = starts + 1
    deltas[starts] = np.where(lengths > 1, deltas[np.minimum(second, len(ts) - 1)], 0)

    nan = np.isnan(vs)
    nan_at = np.flatnonzero(nan)
    values = vs
    if len(nan_at):
        # Forward-fill from the previous number (any number would do; a neighbour packs best).
        last_number = np.maximum.accumulate(np.where(nan, 0, np.arange(len(vs))))
        values = vs[last_number]
        values[np.isnan(values)] = 0.0
    nan_chunk = chunk_of_sample[nan_at]

    integral = (np.abs(values) <= _INT_LIMIT) & (values == np.trunc(values))
    integral &= ~((values == 0) & np.signbit(values))  # -0.0 would come back as 0.0
    int_deltas = np.logical_and.reduceat(integral, starts)
    base = np.where(int_deltas, values[starts], 0.0)
    if int_deltas.any():
        differences = np.empty_like(values)
        differences[1:] = values[1:] - values[:-1]
        differences[starts] = 0.0
        values = np.where(np.repeat(int_deltas, lengths), differences, values)
    return EncodedChunks(
        chunk_of_sample=chunk_of_sample,
        buckets=buckets[starts],
        t_first=ts[starts],
        t_last=ts[ends - 1],
        lengths=lengths,
        rollup=rollup,
        int_deltas=int_deltas,
        base=base,
        deltas=deltas,
        values=values,
        nan_chunk=nan_chunk,
        nan_pos=nan_at - starts[nan_chunk],
        nan_bits=vs[nan_at].view(np.int64),
    )


def decode_chunks(
    series_ids: I64,
    t_first: I64,
    lengths: I64,
    int_deltas: Mask,
    base: F64,
    deltas: I64,
    values: F64,
    nan_at: I64,
    nan_bits: I64,
) -> Samples:
    """Samples of chunks read back in any order, returned sorted by (series id, timestamp).

    The per-chunk arrays describe the chunks in read order; ``deltas``/``values`` hold their
    samples in that same order; ``nan_at`` are the positions in those of the NaN values, whose
    bit patterns are ``nan_bits``.
    Chunks of one series must not overlap in time (the store keeps one chunk per bucket).
    """
    chunks = len(lengths)
    if chunks == 0:
        return Samples.empty()
    starts = np.cumsum(lengths) - lengths
    values = values.astype(np.float64, copy=True)
    if int_deltas.any():
        in_delta_chunk = np.repeat(int_deltas, lengths)
        steps_v = np.where(in_delta_chunk, values, 0.0).astype(np.int64)
        steps_v[starts] = 0
        # int64 sums may wrap around on long reads; the differences below stay exact.
        running = np.cumsum(steps_v)
        rebuilt = np.repeat(base.astype(np.int64), lengths) + running
        rebuilt -= np.repeat(running[starts], lengths)
        values = np.where(in_delta_chunk, rebuilt.astype(np.float64), values)
    if len(nan_at):
        values.view(np.int64)[nan_at] = nan_bits

    steps = deltas.copy()
    steps[starts] = 0
    elapsed = np.cumsum(steps)
    timestamps = np.repeat(t_first, lengths) + elapsed - np.repeat(elapsed[starts], lengths)

    order = np.lexsort((t_first, series_ids))
    sid = np.repeat(series_ids, lengths)
    if np.all(order[1:] > order[:-1]):
        return Samples(sid, timestamps, values)
    # Reorder whole chunks: sample positions of each chunk, in the new chunk order.
    new_lengths = lengths[order]
    offsets = np.repeat(starts[order] - (np.cumsum(new_lengths) - new_lengths), new_lengths)
    index = np.arange(len(timestamps)) + offsets
    return Samples(sid[index], timestamps[index], values[index])
