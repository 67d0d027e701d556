"""From a parsed exposition to the samples one scrape writes. Pure, no I/O.

- Every exposed series gets the target's labels. Exposed labels that clash with a target label
  are kept renamed to ``exported_<name>`` (Prometheus's ``honor_labels: false``).
- Samples without a timestamp get the scrape's start time.
- Each scrape also reports on itself with the synthetic series ``up``,
  ``scrape_duration_seconds``, ``scrape_samples_scraped``,
  ``scrape_samples_post_metric_relabeling`` and ``scrape_series_added``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from opsbook.metrics.exposition import ParsedExposition
from opsbook.metrics.model import METRIC_NAME, Labels, format_labels, with_label
from opsbook.metrics.scrape.errors import ScrapeError

EXPORTED_PREFIX = "exported_"

REPORT_METRICS = (
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
)


@dataclass(frozen=True, slots=True)
class SampleBatch:
    """Samples for one ``store.append``: ``series[i]`` has ``values[i]`` at ``timestamps_ms[i]``."""

    series: list[Labels]
    timestamps_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.series)

    @classmethod
    def at(
        cls, series: Sequence[Labels], t_ms: int, values: Sequence[float] | float
    ) -> SampleBatch:
        """Samples all at ``t_ms``; ``values`` is one per series, or one for all of them."""
        count = len(series)
        if isinstance(values, float | int):
            vs = np.full(count, float(values), dtype=np.float64)
        else:
            vs = np.asarray(values, dtype=np.float64)
        return cls(list(series), np.full(count, t_ms, dtype=np.int64), vs)

    @classmethod
    def concat(cls, *batches: SampleBatch) -> SampleBatch:
        series = [labels for batch in batches for labels in batch.series]
        if not batches:
            return cls(series, np.empty(0, np.int64), np.empty(0, np.float64))
        timestamps = np.concatenate([b.timestamps_ms for b in batches])
        values = np.concatenate([b.values for b in batches])
        return cls(series, timestamps, values)


@dataclass(frozen=True, slots=True)
class ScrapedSamples:
    """What one successful scrape adds, before staleness and the synthetic series."""

    samples: SampleBatch
    tracked: frozenset[Labels]
    """Series subject to staleness: those without an explicit timestamp (as in Prometheus,
    a series that carries its own timestamps does not go stale when it vanishes)."""
    label_cache: dict[Labels, Labels]
    """Exposed labels to final labels, for this scrape's series only (the next scrape's cache)."""
    series_added: int
    """Series not in the previous successful scrape."""


def merge_target_labels(exposed: Labels, target: Labels) -> Labels:
    """The stored labels of an exposed series: target labels win, clashing exposed ones are
    kept as ``exported_<name>`` (``exported_exported_<name>`` if that is taken too)."""
    target_names = {name for name, _ in target}
    if not any(name in target_names for name, _ in exposed):
        return tuple(sorted(exposed + target))
    merged = dict(exposed)
    clashes = [(name, merged.pop(name)) for name in target_names if name in merged]
    merged.update(target)
    # Shorter names first, so that renaming `job` cannot take the name `exported_job` would need.
    for name, value in sorted(clashes, key=lambda clash: (len(clash[0]), clash[0])):
        renamed = EXPORTED_PREFIX + name
        while renamed in merged:
            renamed = EXPORTED_PREFIX + renamed
        merged[renamed] = value
    return tuple(sorted(merged.items()))


def assemble(
    parsed: ParsedExposition,
    target_labels: Labels,
    scrape_ms: int,
    previous_cache: Mapping[Labels, Labels],
    label_limit: int | None,
) -> ScrapedSamples:
    """Label and timestamp every parsed sample; raise :class:`ScrapeError` over ``label_limit``.

    ``previous_cache`` (the last successful scrape's :attr:`ScrapedSamples.label_cache`) saves
    re-merging the labels of series seen before, which is nearly all of them.
    """
    count = len(parsed.series)
    series: list[Labels] = []
    tracked: set[Labels] = set()
    cache: dict[Labels, Labels] = {}
    timestamps = np.empty(count, dtype=np.int64)
    added = 0
    for i, (exposed, explicit_ms) in enumerate(
        zip(parsed.series, parsed.timestamps_ms, strict=True)
    ):
        final = cache.get(exposed) or previous_cache.get(exposed)
        if final is None:
            final = merge_target_labels(exposed, target_labels)
            if label_limit is not None and len(final) > label_limit:
                raise ScrapeError(_label_limit_message(final, label_limit))
            added += 1
        cache[exposed] = final
        series.append(final)
        if explicit_ms is None:
            timestamps[i] = scrape_ms
            tracked.add(final)
        else:
            timestamps[i] = explicit_ms
    values = np.asarray(parsed.values, dtype=np.float64)
    return ScrapedSamples(
        samples=SampleBatch(series, timestamps, values),
        tracked=frozenset(tracked),
        label_cache=cache,
        series_added=added,
    )


def _label_limit_message(labels: Labels, limit: int) -> str:
    return (
        f"series {format_labels(labels)} has {len(labels)} labels (the target's labels "
        f"included), more than label_limit {limit}; raise metrics.limits.label_limit or "
        "expose fewer labels"
    )


def report_series(target_labels: Labels) -> list[Labels]:
    """The synthetic series of a target, in :data:`REPORT_METRICS` order."""
    return [with_label(target_labels, METRIC_NAME, name) for name in REPORT_METRICS]


def report_samples(
    target_labels: Labels,
    scrape_ms: int,
    *,
    up: bool,
    duration_s: float,
    samples_scraped: int,
    series_added: int,
) -> SampleBatch:
    """The synthetic samples of one scrape (no relabeling here, so post-relabeling = scraped)."""
    values = [
        1.0 if up else 0.0,
        duration_s,
        float(samples_scraped),
        float(samples_scraped),
        float(series_added),
    ]
    return SampleBatch.at(report_series(target_labels), scrape_ms, values)
