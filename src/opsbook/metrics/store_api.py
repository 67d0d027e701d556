"""What every sample store offers: appends, selection, summaries and series metadata.

The embedded DuckDB store and the in-memory store implement :class:`SampleStore`; the scraper
and ``opsbook import`` write through it, the PromQL evaluator reads through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from opsbook.metrics.model import Labels, Matcher, SummarySource

MatcherSets = Sequence[Sequence[Matcher]]
"""Several selectors (``match[]=`` in the HTTP API): a series qualifies if any set matches."""


@runtime_checkable
class SampleStore(SummarySource, Protocol):
    def append(
        self,
        series: Sequence[Labels],
        timestamps_ms: Sequence[int] | npt.NDArray[np.int64],
        values: Sequence[float] | npt.NDArray[np.float64],
    ) -> None:
        """Add samples, one per element; ``series[i]`` has ``values[i]`` at ``timestamps_ms[i]``.

        A sample at a timestamp the series already has replaces the old one. Appends are
        buffered; :meth:`flush` makes them durable.
        """
        ...

    def flush(self) -> None: ...

    def close(self) -> None: ...

    def series(self, matcher_sets: MatcherSets, start_ms: int, end_ms: int) -> list[Labels]:
        """Label sets of the series matching any of the sets with a sample in the range."""
        ...

    def label_names(self, matcher_sets: MatcherSets, start_ms: int, end_ms: int) -> list[str]:
        """Sorted label names of those series (all series when ``matcher_sets`` is empty)."""
        ...

    def label_values(
        self, name: str, matcher_sets: MatcherSets, start_ms: int, end_ms: int
    ) -> list[str]:
        """Sorted distinct values of label ``name`` over those series."""
        ...
