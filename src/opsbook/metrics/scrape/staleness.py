"""Which series get a stale marker, and when. Pure, no I/O.

Prometheus's rules, which PromQL relies on to stop returning a series right away instead of
five minutes (the lookback) after it disappeared:

- a series of the previous successful scrape that is absent from this one goes stale at this
  scrape's timestamp;
- a failed scrape ends every series of the previous successful scrape (not the synthetic
  ``up``/``scrape_*`` series, which go on reporting the failure);
- when scraping of a target stops, everything it wrote goes stale, synthetic series included.
"""

from __future__ import annotations

from collections.abc import Iterable, Set

from opsbook.metrics.model import STALE_NAN, Labels
from opsbook.metrics.scrape.samples import SampleBatch


def vanished(previous: Set[Labels], current: Set[Labels]) -> list[Labels]:
    """Series of ``previous`` that ``current`` no longer has."""
    return [labels for labels in previous if labels not in current]


def marker_time(now_ms: int, last_write_ms: int | None) -> int:
    """When markers written outside a scrape (on stop) go: now, but strictly after the last
    sample written, or the marker would replace that sample instead of following it."""
    if last_write_ms is None:
        return now_ms
    return max(now_ms, last_write_ms + 1)


def stale_markers(series: Iterable[Labels], t_ms: int) -> SampleBatch:
    return SampleBatch.at(list(series), t_ms, STALE_NAN)
