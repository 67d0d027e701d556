"""Binary operators: arithmetic, comparisons and set operations, with vector matching."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from opsbook.metrics.model import METRIC_NAME, Labels, format_labels
from opsbook.metrics.promql.values import (
    DUPLICATE_LABELSET,
    Bools,
    Floats,
    ScalarSteps,
    VectorSteps,
    drop_metric_name,
    merge_same_labels,
)
from opsbook.metrics.query import QueryError

COMPARISONS = {"==", "!=", ">", "<", ">=", "<="}
SET_OPERATORS = {"and", "or", "unless"}


def _pow(a: Floats, b: Floats) -> Floats:
    return np.power(a, b)


ARITHMETIC: dict[str, Callable[[Floats, Floats], Floats]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "%": np.fmod,
    "^": _pow,
    "atan2": np.arctan2,
    "==": np.equal,
    "!=": np.not_equal,
    ">": np.greater,
    "<": np.less,
    ">=": np.greater_equal,
    "<=": np.less_equal,
}


@dataclass(frozen=True, slots=True)
class Matching:
    """``on``/``ignoring`` and ``group_left``/``group_right`` of one binary expression."""

    card: str  # "one-to-one", "many-to-one", "one-to-many", "many-to-many"
    on: bool
    labels: tuple[str, ...]
    include: tuple[str, ...]
    return_bool: bool


def compute(op: str, lhs: Floats, rhs: Floats) -> Floats:
    with np.errstate(all="ignore"):
        result = ARITHMETIC[op](lhs, rhs)
    return np.asarray(result, dtype=np.float64)


def scalar_scalar(op: str, lhs: ScalarSteps, rhs: ScalarSteps) -> ScalarSteps:
    return ScalarSteps(compute(op, lhs.values, rhs.values))


def vector_scalar(
    op: str, vector: VectorSteps, scalar: ScalarSteps, *, vector_on_left: bool, return_bool: bool
) -> VectorSteps:
    other = scalar.values[None, :]
    if vector_on_left:
        result = compute(op, vector.values, other)
    else:
        result = compute(op, other, vector.values)
    present = vector.present.copy()
    if op in COMPARISONS:
        if return_bool:
            values = result
        else:
            present &= result.astype(bool)
            values = vector.values.copy()
            labels = vector.labels
            return VectorSteps(labels, values, present).compact()
    else:
        values = result
    labels = [drop_metric_name(labels) for labels in vector.labels]
    out = VectorSteps(labels, values, present)
    return merge_same_labels(out, DUPLICATE_LABELSET).compact()


def _signature(labels: Labels, matching: Matching) -> Labels:
    if matching.on:
        names = set(matching.labels)
        return tuple(p for p in labels if p[0] in names)
    drop = set(matching.labels) | {METRIC_NAME}
    return tuple(p for p in labels if p[0] not in drop)


def _by_signature(vector: VectorSteps, matching: Matching) -> dict[Labels, list[int]]:
    groups: dict[Labels, list[int]] = {}
    for row, labels in enumerate(vector.labels):
        groups.setdefault(_signature(labels, matching), []).append(row)
    return groups


def _presence_by_signature(
    vector: VectorSteps, groups: dict[Labels, list[int]]
) -> dict[Labels, Bools]:
    return {key: np.asarray(vector.present[rows].any(axis=0)) for key, rows in groups.items()}


def set_operation(op: str, lhs: VectorSteps, rhs: VectorSteps, matching: Matching) -> VectorSteps:
    steps = lhs.steps()
    absent = np.zeros(steps, dtype=bool)
    if op in ("and", "unless"):
        rhs_presence = _presence_by_signature(rhs, _by_signature(rhs, matching))
        present = lhs.present.copy()
        for row, labels in enumerate(lhs.labels):
            other = rhs_presence.get(_signature(labels, matching), absent)
            present[row] &= other if op == "and" else ~other
        return VectorSteps(lhs.labels, lhs.values, present, lhs.sample_ts).compact()
    # or: everything of the left side, and the right side where the left has no match.
    lhs_presence = _presence_by_signature(lhs, _by_signature(lhs, matching))
    rhs_present = rhs.present.copy()
    for row, labels in enumerate(rhs.labels):
        rhs_present[row] &= ~lhs_presence.get(_signature(labels, matching), absent)
    combined = VectorSteps(
        lhs.labels + rhs.labels,
        np.concatenate([lhs.values, rhs.values]),
        np.concatenate([lhs.present, rhs_present]),
    ).compact()
    return merge_same_labels(combined, DUPLICATE_LABELSET)


def vector_vector(op: str, lhs: VectorSteps, rhs: VectorSteps, matching: Matching) -> VectorSteps:
    if op in SET_OPERATORS:
        return set_operation(op, lhs, rhs, matching)
    steps = lhs.steps()
    group_right = matching.card == "one-to-many"
    many, one = (rhs, lhs) if group_right else (lhs, rhs)
    one_groups = _by_signature(one, matching)
    one_side = "left" if group_right else "right"
    merged_one: dict[Labels, tuple[Floats, Bools, Labels]] = {}
    for key, rows in one_groups.items():
        if len(rows) > 1 and (one.present[rows].sum(axis=0) > 1).any():
            step = int(np.flatnonzero(one.present[rows].sum(axis=0) > 1)[0])
            duplicates = [format_labels(one.labels[r]) for r in rows if one.present[r, step]]
            raise QueryError(
                f"found duplicate series for the match group {_format_key(key)} on the "
                f"{one_side} hand-side of the operation: [{', '.join(duplicates)}];"
                "many-to-many matching not allowed: matching labels must be unique on one side"
            )
        values = np.zeros(steps)
        present = np.zeros(steps, dtype=bool)
        for row in rows:
            mask = one.present[row]
            values[mask] = one.values[row][mask]
            present |= mask
        merged_one[key] = (values, present, one.labels[rows[0]])

    out_labels: list[Labels] = []
    out_values: list[Floats] = []
    out_present: list[Bools] = []
    matched_keys: dict[Labels, list[int]] = {}
    is_comparison = op in COMPARISONS
    for row, labels in enumerate(many.labels):
        key = _signature(labels, matching)
        found = merged_one.get(key)
        if found is None:
            continue
        one_values, one_present, one_labels = found
        present = many.present[row] & one_present
        if not present.any():
            continue
        left, right = (
            (one_values, many.values[row]) if group_right else (many.values[row], one_values)
        )
        result = compute(op, left, right)
        if is_comparison and not matching.return_bool:
            present = present & result.astype(bool)
            values = left
        else:
            values = result
        out_labels.append(_result_labels(labels, one_labels, op, matching))
        out_values.append(values)
        out_present.append(present)
        matched_keys.setdefault(key, []).append(len(out_present) - 1)
    if matching.card == "one-to-one":
        for rows in matched_keys.values():
            if len(rows) > 1 and (np.array([out_present[r] for r in rows]).sum(axis=0) > 1).any():
                raise QueryError(
                    "multiple matches for labels: many-to-one matching must be explicit "
                    "(group_left/group_right)"
                )
    if not out_labels:
        return VectorSteps.empty(steps)
    vector = VectorSteps(out_labels, np.array(out_values), np.array(out_present)).compact()
    message = (
        "multiple matches for labels: grouping labels must ensure unique matches"
        if matching.card != "one-to-one"
        else DUPLICATE_LABELSET
    )
    return merge_same_labels(vector, message)


def _format_key(key: Labels) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in key) + "}"


def _result_labels(many: Labels, one: Labels, op: str, matching: Matching) -> Labels:
    labels = dict(many)
    if op not in COMPARISONS or matching.return_bool:
        labels.pop(METRIC_NAME, None)
    if matching.card == "one-to-one":
        if matching.on:
            keep = set(matching.labels)
            labels = {k: v for k, v in labels.items() if k in keep}
        else:
            for name in matching.labels:
                labels.pop(name, None)
    elif matching.include:
        source = dict(one)
        for name in matching.include:
            value = source.get(name, "")
            if value:
                labels[name] = value
            else:
                labels.pop(name, None)
    return tuple(sorted(labels.items()))


def matching_from(modifier: object, op: str) -> Matching:
    """Read ``promql_parser``'s BinModifier into a :class:`Matching`."""
    if modifier is None:
        card = "many-to-many" if op in SET_OPERATORS else "one-to-one"
        return Matching(card, False, (), (), False)
    card_name = str(modifier.card).rsplit(".", 1)[-1]  # type: ignore[attr-defined]
    card = {
        "OneToOne": "one-to-one",
        "ManyToOne": "many-to-one",
        "OneToMany": "one-to-many",
        "ManyToMany": "many-to-many",
    }[card_name]
    matching = modifier.matching  # type: ignore[attr-defined]
    on = matching is not None and str(matching.type).endswith("Include")
    labels: Sequence[str] = tuple(matching.labels) if matching is not None else ()
    include = modifier.group_labels or ()  # type: ignore[attr-defined]
    return_bool = bool(modifier.return_bool)  # type: ignore[attr-defined]
    return Matching(card, on, tuple(labels), tuple(include), return_bool)
