"""Parsing PromQL with ``promql-parser``, with errors that say where the problem is.

``promql-parser`` reports what is wrong but not where. The position is found by parsing ever
longer prefixes of the query: the first prefix that fails for a reason other than "the input
ended too early" ends at the offending token. Queries are short, the parser is fast (Rust), so
this costs microseconds and only on the error path.
"""

from __future__ import annotations

from typing import Any

import promql_parser

from opsbook.metrics.model import METRIC_NAME, Matcher, MatchType
from opsbook.metrics.query import BadQueryRequest, QuerySyntaxError

_INCOMPLETE_HINTS = ("end of input", "unclosed", "unexpected end", "unterminated")
_MAX_SCANNED_LENGTH = 4096

_MATCH_TYPES = {
    "Equal": MatchType.EQUAL,
    "NotEqual": MatchType.NOT_EQUAL,
    "Re": MatchType.REGEX,
    "NotRe": MatchType.NOT_REGEX,
}


def parse_expr(expr: str) -> Any:
    """The AST of ``expr``; raises :class:`QuerySyntaxError` with ``line:column`` and reason."""
    if not expr.strip():
        raise QuerySyntaxError("1:1: parse error: no expression found in input", 0)
    try:
        return promql_parser.parse(expr)
    except ValueError as exc:
        message = str(exc)
    position = _error_position(expr)
    line = expr.count("\n", 0, position) + 1
    column = position - (expr.rfind("\n", 0, position) + 1) + 1
    raise QuerySyntaxError(f"{line}:{column}: parse error: {message}", position)


def _error_position(expr: str) -> int:
    if len(expr) > _MAX_SCANNED_LENGTH:
        return 0
    start = 0
    for end in range(1, len(expr) + 1):
        if expr[end - 1].isspace():
            continue
        try:
            promql_parser.parse(expr[:end])
        except ValueError as exc:
            if not any(hint in str(exc) for hint in _INCOMPLETE_HINTS):
                # The token that broke the parse starts after the last whitespace before it.
                return _token_start(expr, end - 1, start)
            continue
        start = end
    return len(expr.rstrip())


def _token_start(expr: str, index: int, floor: int) -> int:
    while index > floor and not expr[index - 1].isspace() and expr[index - 1] not in "(){},":
        index -= 1
    return index


def matcher_group(selector: Any, group: Any) -> list[Matcher]:
    """One group of a parsed selector's matchers, its metric name first as ``__name__``;
    :class:`QuerySyntaxError` for an invalid regular expression."""
    name = [Matcher(METRIC_NAME, MatchType.EQUAL, selector.name)] if selector.name else []
    return name + [_matcher(matcher) for matcher in group]


def matchers_of(selector: Any) -> list[Matcher]:
    """The matchers of a parsed vector selector, its metric name included as ``__name__``."""
    return matcher_group(selector, selector.matchers.matchers)


def or_matcher_sets(selector: Any) -> list[list[Matcher]]:
    """``{a="1" or b="2"}``: one matcher list per alternative (empty when there is no ``or``)."""
    return [matcher_group(selector, group) for group in selector.matchers.or_matchers]


def _matcher(matcher: Any) -> Matcher:
    op = str(matcher.op).rsplit(".", 1)[-1]
    try:
        return Matcher(matcher.name, _MATCH_TYPES[op], matcher.value)
    except ValueError as exc:
        raise QuerySyntaxError(f"1:1: parse error: {exc}") from None


def parse_series_selector(text: str) -> list[Matcher]:
    """A ``match[]`` selector of the series/labels APIs as matchers."""
    try:
        node = promql_parser.parse(text)
    except ValueError as exc:
        raise BadQueryRequest(f"invalid series selector {text!r}: {exc}") from None
    if not isinstance(node, promql_parser.VectorSelector):
        raise BadQueryRequest(
            f"invalid series selector {text!r}: expected a vector selector like 'up{{job=\"x\"}}'"
        )
    if node.offset is not None or node.at is not None:
        raise BadQueryRequest(f"invalid series selector {text!r}: offset and @ are not allowed")
    if node.matchers.or_matchers:
        raise BadQueryRequest(f"invalid series selector {text!r}: 'or' is not supported here")
    return matchers_of(node)
