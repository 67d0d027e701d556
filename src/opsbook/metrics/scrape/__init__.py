"""The scraper: pulls ``/metrics`` of every configured target into the sample store.

- :mod:`~opsbook.metrics.scrape.targets`: targets from ``opsbook.yaml`` (pure).
- :mod:`~opsbook.metrics.scrape.samples`: target labels, timestamps, synthetic series (pure).
- :mod:`~opsbook.metrics.scrape.staleness`: which series get stale markers, and when (pure).
- :mod:`~opsbook.metrics.scrape.body`: the body size limit and gzip decoding (pure).
- :mod:`~opsbook.metrics.scrape.http`: one HTTP GET, as Prometheus makes it.
- :mod:`~opsbook.metrics.scrape.loop`: :class:`Scraper`, one task per target.
"""

from opsbook.metrics.scrape.errors import ScrapeError
from opsbook.metrics.scrape.loop import Scraper, TargetStatus
from opsbook.metrics.scrape.targets import Target, targets_from_config

__all__ = ["ScrapeError", "Scraper", "Target", "TargetStatus", "targets_from_config"]
