"""The data model of the metrics engine: series, samples, stale markers, matchers.

Shared by the scraper, the stores, the PromQL evaluator and the query API, so it has no I/O.

- A series is identified by its :data:`Labels`: a tuple of ``(name, value)`` pairs sorted by name,
  the metric name included as ``__name__``. Tuples are hashable and cheap to compare, so they
  serve directly as dictionary keys (series caches, grouping).
- Timestamps are integer milliseconds since the epoch; values are float64.
- A stale marker is the special NaN with bit pattern ``0x7ff0000000000002`` (Prometheus's
  ``StaleNaN``). It is stored like a sample; readers drop it, and an instant selector that meets
  it as the latest sample sees no sample at all.
"""

from __future__ import annotations

import enum
import math
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Labels = tuple[tuple[str, str], ...]
"""Label pairs sorted by name, ``__name__`` included. Never has an empty value."""

METRIC_NAME = "__name__"

STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]
"""Prometheus's stale marker: a NaN with a particular payload (not to be confused with NaN)."""

_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z", re.ASCII)


def is_stale(value: float) -> bool:
    """Whether ``value`` is the stale marker (an ordinary NaN is not)."""
    return value != value and struct.pack("<d", value) == _STALE_BYTES


_STALE_BYTES = struct.pack("<d", STALE_NAN)


def stale_mask(values: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Element-wise :func:`is_stale` over a float64 array."""
    mask: npt.NDArray[np.bool_] = values.view(np.uint64) == np.uint64(STALE_NAN_BITS)
    return mask


def is_valid_label_name(name: str) -> bool:
    return _LABEL_NAME_RE.match(name) is not None


def labels_from_mapping(labels: Mapping[str, str]) -> Labels:
    """Build :data:`Labels` from a mapping; empty values are dropped, as Prometheus does."""
    return tuple(sorted((k, v) for k, v in labels.items() if v != ""))


def labels_to_dict(labels: Labels) -> dict[str, str]:
    return dict(labels)


def metric_name(labels: Labels) -> str | None:
    for name, value in labels:
        if name == METRIC_NAME:
            return value
    return None


def label_value(labels: Labels, name: str) -> str:
    """The value of label ``name``, or "" when absent (Prometheus treats both alike)."""
    for key, value in labels:
        if key == name:
            return value
    return ""


def without_labels(labels: Labels, names: Iterable[str]) -> Labels:
    drop = set(names)
    return tuple(pair for pair in labels if pair[0] not in drop)


def with_label(labels: Labels, name: str, value: str) -> Labels:
    """A copy with ``name`` set to ``value`` (removed when ``value`` is empty)."""
    rest = [pair for pair in labels if pair[0] != name]
    if value != "":
        rest.append((name, value))
    return tuple(sorted(rest))


def format_labels(labels: Labels) -> str:
    """``name{a="1", b="2"}`` as Prometheus prints a series."""
    name = metric_name(labels) or ""
    inner = ", ".join(f"{k}={_quote(v)}" for k, v in labels if k != METRIC_NAME)
    return f"{name}{{{inner}}}" if inner or not name else name


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class MatchType(enum.Enum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


@dataclass(frozen=True, slots=True)
class Matcher:
    """A label matcher. Regexes are fully anchored, as in Prometheus.

    An absent label matches as the empty string: ``{env=""}`` selects series without ``env``.
    """

    name: str
    type: MatchType
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.type in (MatchType.REGEX, MatchType.NOT_REGEX):
            try:
                compiled = re.compile(f"(?s:{go_regex_to_python(self.value)})\\Z")
            except re.error as exc:
                raise ValueError(f"invalid regular expression {self.value!r}: {exc}") from None
            object.__setattr__(self, "_regex", compiled)

    @classmethod
    def equal(cls, name: str, value: str) -> Matcher:
        return cls(name, MatchType.EQUAL, value)

    def matches(self, value: str) -> bool:
        if self.type is MatchType.EQUAL:
            return value == self.value
        if self.type is MatchType.NOT_EQUAL:
            return value != self.value
        assert self._regex is not None
        found = self._regex.match(value) is not None
        return found if self.type is MatchType.REGEX else not found

    def matches_empty(self) -> bool:
        return self.matches("")

    def __str__(self) -> str:
        return f"{self.name}{self.type.value}{_quote(self.value)}"


_INLINE_FLAGS = re.compile(r"\(\?([imsU-]+)\)")


def go_regex_to_python(pattern: str) -> str:
    """Rewrite Go's ``(?i)`` flags in mid-pattern, which Python rejects, as scoped groups.

    In Go a flag group holds until the end of the enclosing group, across ``|``; here it
    becomes ``(?i:...)`` closed at the same places.
    """
    if "(?" not in pattern:
        return pattern
    out: list[str] = []
    pending: list[list[str]] = [[]]  # per group depth: the flag openers still open
    i = 0
    in_class = False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            if pattern[i + 1 : i + 2] == "]":
                out.append("]")
                i += 1
            i += 1
            continue
        flags = _INLINE_FLAGS.match(pattern, i)
        if flags is not None:
            opener = f"(?{flags.group(1)}:"
            out.append(opener)
            pending[-1].append(opener)
            i = flags.end()
            continue
        if ch == "(":
            pending.append([])
        elif ch == ")":
            out.append(")" * len(pending[-1]))
            if len(pending) > 1:
                pending.pop()
        elif ch == "|" and pending[-1]:
            out.append(")" * len(pending[-1]) + "|" + "".join(pending[-1]))
            i += 1
            continue
        out.append(ch)
        i += 1
    out.append(")" * len(pending[0]))
    return "".join(out)


def matches_all(labels: Labels, matchers: Sequence[Matcher]) -> bool:
    values = dict(labels)
    return all(m.matches(values.get(m.name, "")) for m in matchers)


@dataclass(frozen=True, slots=True)
class SeriesData:
    """The samples of one series in a time range, sorted by timestamp, stale markers included."""

    labels: Labels
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RangeSummary:
    """What the range functions need of one series over ``(start, end]``, without its samples.

    Stores keep these per series and time bucket (rollups) so that a query over 30 days reads a
    few hundred rows per series instead of every raw sample. Stale markers are not counted.
    ``increase`` is the counter increase with resets handled as ``rate()`` does: the sum over
    consecutive pairs of ``cur - prev``, or ``cur`` where ``cur < prev``.
    """

    labels: Labels
    count: int
    first_t: int
    first_v: float
    last_t: int
    last_v: float
    sum: float
    min: float
    max: float
    increase: float
    resets: int
    changes: int


@runtime_checkable
class SeriesSource(Protocol):
    """Where the PromQL evaluator reads samples from."""

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesData]:
        """Series matching every matcher, with their samples in ``[start_ms, end_ms]``.

        Series without a sample in the range are left out. Both ends are inclusive; the
        evaluator trims to Prometheus's left-open windows itself.
        """
        ...


@runtime_checkable
class SummarySource(SeriesSource, Protocol):
    """A source that can answer :class:`RangeSummary` requests without reading raw samples."""

    def summarize(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[RangeSummary]:
        """One summary per matching series over ``(start_ms, end_ms]`` (left-open)."""
        ...


def summarize_samples(
    labels: Labels, timestamps: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
) -> RangeSummary | None:
    """The :class:`RangeSummary` of raw samples (stale markers are skipped); None when empty."""
    keep = ~stale_mask(values)
    ts, vs = timestamps[keep], values[keep]
    if len(vs) == 0:
        return None
    prev, cur = vs[:-1], vs[1:]
    dropped = cur < prev
    increase = float(np.sum(np.where(dropped, cur, cur - prev))) if len(vs) > 1 else 0.0
    changed = (cur != prev) & ~(np.isnan(cur) & np.isnan(prev))
    return RangeSummary(
        labels=labels,
        count=len(vs),
        first_t=int(ts[0]),
        first_v=float(vs[0]),
        last_t=int(ts[-1]),
        last_v=float(vs[-1]),
        sum=float(np.sum(vs)),
        min=_nan_aware(np.fmin.reduce, vs),
        max=_nan_aware(np.fmax.reduce, vs),
        increase=increase,
        resets=int(np.count_nonzero(dropped)),
        changes=int(np.count_nonzero(changed)),
    )


def _nan_aware(reduce: object, values: npt.NDArray[np.float64]) -> float:
    # fmin/fmax ignore NaN unless every value is NaN, as min_over_time/max_over_time do.
    result = float(reduce(values))  # type: ignore[operator]
    return result if not math.isnan(result) else math.nan
