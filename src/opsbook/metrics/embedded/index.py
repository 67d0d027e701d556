"""The in-memory series index: label sets <-> series ids, and postings per label pair.

Matchers are answered here, without touching the samples: for ``{__name__="x", route=~"/a.*"}``
the index intersects the postings of ``__name__="x"`` with the union of the postings of the
``route`` values the regex accepts. Ids are assigned in order of first appearance, so id order
is the order series were first written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from opsbook.metrics.model import Labels, Matcher, MatchType

Ids = npt.NDArray[np.int64]


def encode_labels(labels: Labels) -> str:
    return json.dumps(labels, ensure_ascii=False, separators=(",", ":"))


def decode_labels(text: str) -> Labels:
    return tuple((name, value) for name, value in json.loads(text))


class SeriesIndex:
    """Not thread-safe by itself: the store guards it with its lock."""

    def __init__(self) -> None:
        self._labels: dict[int, Labels] = {}
        self._ids: dict[Labels, int] = {}
        self._postings: dict[str, dict[str, list[int]]] = {}
        self._next_id = 0

    def __len__(self) -> int:
        return len(self._ids)

    def load(self, ids: Sequence[int], labels: Sequence[Labels]) -> None:
        for series_id, series_labels in sorted(zip(ids, labels, strict=True)):
            self._insert(series_id, series_labels)
        self._next_id = max(ids, default=-1) + 1

    def ids_for(self, series: Sequence[Labels]) -> tuple[list[int], list[int]]:
        """Ids of ``series`` (new ones are created) and the ids created by this call."""
        known = self._ids
        ids = [known.get(labels, -1) for labels in series]
        created: list[int] = []
        if -1 in ids:
            for i, labels in enumerate(series):
                if ids[i] == -1:
                    series_id = known.get(labels)
                    if series_id is None:
                        series_id = self._next_id
                        self._next_id += 1
                        self._insert(series_id, labels)
                        created.append(series_id)
                    ids[i] = series_id
        return ids, created

    def labels(self, series_id: int) -> Labels:
        return self._labels[series_id]

    def remove(self, series_ids: Iterable[int]) -> None:
        gone = set(series_ids)
        touched: set[tuple[str, str]] = set()
        for series_id in gone:
            labels = self._labels.pop(series_id)
            del self._ids[labels]
            touched.update(labels)
        for name, value in touched:
            by_value = self._postings[name]
            remaining = [i for i in by_value[value] if i not in gone]
            if remaining:
                by_value[value] = remaining
            else:
                del by_value[value]
                if not by_value:
                    del self._postings[name]

    def _insert(self, series_id: int, labels: Labels) -> None:
        self._labels[series_id] = labels
        self._ids[labels] = series_id
        for name, value in labels:
            self._postings.setdefault(name, {}).setdefault(value, []).append(series_id)

    def all_ids(self) -> Ids:
        return np.fromiter(self._labels, np.int64, len(self._labels))

    def match(self, matchers: Sequence[Matcher]) -> Ids:
        """Sorted ids of the series that every matcher accepts.

        A matcher that accepts the empty string also accepts series without the label (as in
        Prometheus), so it is applied as "all series minus those with a rejected value".
        """
        selected: Ids | None = None
        excluded: list[Ids] = []
        for matcher in matchers:
            by_value = self._postings.get(matcher.name, {})
            if matcher.type is MatchType.EQUAL and matcher.value:
                if matcher.value not in by_value:
                    return np.empty(0, np.int64)
                ids = np.array(by_value[matcher.value], dtype=np.int64)
                selected = ids if selected is None else np.intersect1d(selected, ids, True)
                continue
            if matcher.type is MatchType.NOT_EQUAL and matcher.value:
                if matcher.value in by_value:
                    excluded.append(np.array(by_value[matcher.value], dtype=np.int64))
                continue
            if matcher.matches_empty():
                rejected = [ids for value, ids in by_value.items() if not matcher.matches(value)]
                if rejected:
                    excluded.append(_union(rejected))
                continue
            accepted = [ids for value, ids in by_value.items() if matcher.matches(value)]
            if not accepted:
                return np.empty(0, np.int64)
            ids = _union(accepted)
            selected = ids if selected is None else np.intersect1d(selected, ids, True)
        if selected is None:
            selected = np.sort(self.all_ids())
        for ids in excluded:
            selected = selected[~np.isin(selected, ids)]
        return selected


def _union(lists: list[list[int]]) -> Ids:
    if len(lists) == 1:
        return np.array(lists[0], dtype=np.int64)  # postings are kept in ascending order
    return np.unique(np.fromiter((i for ids in lists for i in ids), np.int64))
