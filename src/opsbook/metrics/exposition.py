"""Parsing a ``/metrics`` body: Prometheus text format 0.0.4 and OpenMetrics 1.0, written for speed.

A scrape body is mostly the same series every time, with new values. So each sample line is
split with ``str.rpartition`` at its last space(s) into *series text*, value and optional
timestamp, and the series text (``http_requests_total{code="200",route="/a"}``) is looked up in
a :class:`SeriesCache`. A warm cache turns a line into one dict lookup and one ``float()``. Only
a miss parses labels: ``str.split`` for the usual syntax (``name{a="x",b="y"}``), a regular
expression when there are blanks or escapes, and a scanner for everything else (quoted names)
and for precise error messages.

Semantics follow Prometheus:

- ``application/openmetrics-text`` bodies follow OpenMetrics: they must end with ``# EOF``,
  timestamps are seconds (converted to milliseconds), exemplars after `` # `` are ignored,
  ``_created`` samples of counters, histograms and summaries are dropped, and comments other
  than ``# HELP``/``# TYPE``/``# UNIT`` are errors. Anything else is the text format:
  timestamps are integer milliseconds, other comments and blank lines are ignored.
- Label values unescape ``\\\\``, ``\\"`` and ``\\n`` (other escapes stay as written); empty
  values are dropped; labels are sorted by name; a label given twice is an error. Prometheus
  3.x quoted UTF-8 names are accepted: ``{"my.metric", "my.label"="v"}``.
- Values and timestamps are read with Python's ``float()``/``int()``, so a digit-grouping
  underscore (``1_000``) is accepted where Prometheus would reject the line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from opsbook.metrics.model import METRIC_NAME, Labels, metric_name

OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text"

TEXT_TYPES = frozenset({"counter", "gauge", "histogram", "summary", "untyped"})
OPENMETRICS_TYPES = frozenset(
    {"counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"}
)
# Families whose ``<name>_created`` samples carry a creation time, not a value worth storing.
_CREATED_TYPES = frozenset({"counter", "histogram", "summary"})

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_EXCERPT_CHARS = 80
_TOKEN_CHARS = 40
_MAX_REMEMBERED_STAMPS = 100_000
# A cache keeps the series of its last scrape plus up to this many (or as many again) others.
_CACHE_SLACK = 256


class ExpositionError(ValueError):
    """A body that does not parse. The message starts with ``line N: `` when a line is at fault."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason if line is None else f"line {line}: {reason}")
        self.reason = reason
        self.line = line


class ExpositionLimitError(ExpositionError):
    """A body over one of the :class:`ParseLimits`; the message names the limit and its value."""


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Limits of one scrape, as Prometheus's scrape config has them; None means no limit."""

    sample_limit: int | None = None
    label_limit: int | None = None
    """Most labels on one series, ``__name__`` included."""
    label_name_length_limit: int | None = None
    """Longest label name, in UTF-8 bytes (as Prometheus counts)."""
    label_value_length_limit: int | None = None
    """Longest label value (the metric name included), in UTF-8 bytes."""


NO_LIMITS = ParseLimits()


class SeriesCache:
    """Maps the raw series text of a line to its parsed, validated :data:`Labels`.

    For example ``http_requests_total{route="/a",code="200"}`` maps to
    ``(("__name__", "http_requests_total"), ("code", "200"), ("route", "/a"))``. Keep one per
    scrape target and pass it to every :func:`parse_exposition` of that target, so series that
    did not change are not parsed again; the same series always yields the same ``Labels``
    object, which makes later dictionary lookups cheap too.

    Bounded: after each parse (:meth:`end_scrape`), once the cache holds more than twice the
    series of that scrape (plus a little slack), it keeps only that scrape's series. Entries
    are validated against the parse's :class:`ParseLimits`; parsing with other limits starts
    the cache afresh. Not thread-safe: one target scrapes one body at a time.
    """

    __slots__ = ("_entries", "_last_series", "_limits")

    def __init__(self) -> None:
        self._entries: dict[str, Labels] = {}
        self._limits: ParseLimits = NO_LIMITS
        self._last_series: Sequence[Labels] = ()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._last_series = ()

    def end_scrape(self) -> None:
        """Drop series the last parse did not see, once they outnumber those it did.

        :func:`parse_exposition` calls this itself; calling it again changes nothing.
        """
        live = self._last_series
        if len(self._entries) > 2 * len(live) + _CACHE_SLACK:
            keep = set(live)
            self._entries = {key: labels for key, labels in self._entries.items() if labels in keep}

    def _scraped(self, series: Sequence[Labels]) -> None:
        self._last_series = series
        self.end_scrape()

    def _use_limits(self, limits: ParseLimits) -> None:
        # Cached series passed the limits they were parsed under; others need a fresh look.
        if limits != self._limits:
            self._entries.clear()
            self._limits = limits


@dataclass(slots=True)
class ParsedExposition:
    """The samples of one body, in body order: ``series[i]`` has ``values[i]``."""

    series: list[Labels]
    values: npt.NDArray[np.float64]
    timestamps_ms: list[int | None]
    """The sample's own timestamp in milliseconds, None when the line has none."""
    types: dict[str, str] = field(default_factory=dict)
    """Metric family name to its ``# TYPE`` (``counter``, ``gauge``, ``histogram``, ...)."""


def is_openmetrics(content_type: str | None) -> bool:
    """Whether a Content-Type header announces OpenMetrics (anything else is the text format)."""
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == OPENMETRICS_CONTENT_TYPE


def parse_exposition(
    body: bytes | str,
    content_type: str | None,
    *,
    cache: SeriesCache | None = None,
    limits: ParseLimits | None = None,
) -> ParsedExposition:
    """Parse a scrape body; raise :class:`ExpositionError` (with the line) when it is malformed.

    ``content_type`` picks the format: OpenMetrics for ``application/openmetrics-text``, the
    Prometheus text format for anything else (None included). Over a limit of ``limits``,
    :class:`ExpositionLimitError` is raised.
    """
    limits = limits or NO_LIMITS
    if cache is None:
        cache = SeriesCache()
    cache._use_limits(limits)
    lines = split_lines(body)
    parser = LineParser(is_openmetrics(content_type), cache, limits)
    parser.feed(lines, 1)
    parser.finish(len(lines))
    series, values, timestamps = parser.take()
    if limits.sample_limit is not None and len(series) > limits.sample_limit:
        raise ExpositionLimitError(
            f"the body has {len(series)} samples, more than sample_limit {limits.sample_limit}"
        )
    cache._scraped(series)
    return ParsedExposition(
        series=series,
        values=np.array(values, dtype=np.float64),
        timestamps_ms=timestamps,
        types=parser.types,
    )


def split_lines(body: bytes | str) -> list[str]:
    """The lines of a body; one final newline does not make an extra (blank) line."""
    if isinstance(body, bytes | bytearray | memoryview):
        body = decode_utf8(bytes(body), first_line=1)
    lines = body.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def decode_utf8(data: bytes, *, first_line: int) -> str:
    """``data`` as UTF-8; a bad byte is reported on its line (``first_line`` is data's first)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + data.count(b"\n", 0, exc.start)
        start = data.rfind(b"\n", 0, exc.start) + 1
        end = data.find(b"\n", exc.start)
        bad = data[start : end if end >= 0 else len(data)].decode("utf-8", "replace")
        raise ExpositionError(
            f"not valid UTF-8 (byte {data[exc.start]:#04x}): {_excerpt(bad)}", line
        ) from None


class _NotCanonical(Exception):
    """The quick path cannot read this series text; the full grammar will."""


class _BadLine(Exception):
    """What is wrong with the line being parsed; :meth:`LineParser.feed` adds where it is."""

    def __init__(self, reason: str, *, limit: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.limit = limit


class LineParser:
    """The sample loop behind :func:`parse_exposition`, fed a list of lines at a time.

    The OpenMetrics importer feeds a large file chunk by chunk through the same loop. Samples
    accumulate until :meth:`take`; ``require_timestamps`` makes a sample without a timestamp
    an error (as in a backfill file).
    """

    def __init__(
        self,
        openmetrics: bool,
        cache: SeriesCache,
        limits: ParseLimits = NO_LIMITS,
        *,
        require_timestamps: bool = False,
    ) -> None:
        self.openmetrics = openmetrics
        self.require_timestamps = require_timestamps
        self.types: dict[str, str] = {}
        self._cache = cache
        self._limits = limits
        self._series: list[Labels] = []
        self._values: list[float] = []
        self._timestamps: list[int | None] = []
        self._family: str | None = None
        self._created_name: str | None = None
        # Prefixes of the series text of a ``<family>_created`` sample (plain and quoted name).
        self._created_prefixes: tuple[str, ...] = ()
        self._eof_line: int | None = None
        # Per parse: validated ``name="value`` pieces and metric names, shared by many series.
        self._pairs: dict[str, tuple[str, str]] = {}
        self._shared: dict[str, tuple[tuple[tuple[str, str], ...], frozenset[str]]] = {}
        self._metric_names: set[str] = set()
        self._stamps: dict[str, int] = {}

    def take(self) -> tuple[list[Labels], list[float], list[int | None]]:
        """The samples parsed since the last call: series, values, timestamps."""
        taken = self._series, self._values, self._timestamps
        self._series, self._values, self._timestamps = [], [], []
        return taken

    def finish(self, last_line: int) -> None:
        """Check the end of the input (OpenMetrics must have ended with ``# EOF``)."""
        if self.openmetrics and self._eof_line is None:
            raise ExpositionError(
                "no '# EOF' at the end: OpenMetrics input must end with it (is it cut short?)",
                max(last_line, 1),
            )

    def feed(self, lines: list[str], first_line: int) -> None:
        """Parse ``lines``, the first of which is line ``first_line`` of the input."""
        if self._eof_line is not None and lines:
            raise ExpositionError(
                f"unexpected data after '# EOF' (line {self._eof_line}): {_excerpt(lines[0])}",
                first_line,
            )
        # The hot loop: locals only, str methods only, no per-character Python work.
        get = self._cache._entries.get
        known_stamp = self._stamps.get
        add_series = self._series.append
        add_value = self._values.append
        add_timestamp = self._timestamps.append
        require_timestamps = self.require_timestamps
        created_prefixes = self._created_prefixes
        index = -1
        eof_index = -1
        try:
            for index, line in enumerate(lines):
                if not line or line[0] == "#":
                    if self._other_line(line):
                        eof_index = index
                        break
                    created_prefixes = self._created_prefixes
                    continue
                head, _, last = line.rpartition(" ")
                # Backfill lines all have a timestamp: "<series> <value>" is never a series.
                labels = None if require_timestamps else get(head)
                stamp: int | None = None
                if labels is not None:
                    # "<series> <value>": the common scrape line.
                    key = head
                    try:
                        value = float(last)
                    except ValueError:
                        labels = None
                else:
                    # "<series> <value> <timestamp>": every line of a backfill file.
                    key, _, value_text = head.rpartition(" ")
                    labels = get(key)
                    if labels is not None:
                        # Series of one file or target share their timestamps: remember them.
                        stamp = known_stamp(last)
                        if stamp is None:
                            stamp = self._new_stamp(last)
                        try:
                            value = float(value_text)
                        except ValueError:
                            labels = None
                        if stamp is None:
                            labels = None
                if labels is None:
                    sample = self._parse_unseen(line, head, last)
                    if sample is None:
                        continue
                    labels, value, stamp = sample
                elif (
                    created_prefixes
                    and key.startswith(created_prefixes)
                    and metric_name(labels) == self._created_name
                ):
                    continue  # OpenMetrics <counter>_created: a creation time, not a sample
                add_series(labels)
                add_value(value)
                add_timestamp(stamp)
        except _BadLine as bad:
            error = ExpositionLimitError if bad.limit else ExpositionError
            line_text = lines[index]
            raise error(f"{bad.reason}: {_excerpt(line_text)}", first_line + index) from None
        if eof_index >= 0:
            self._eof_line = first_line + eof_index
            if eof_index + 1 < len(lines):
                raise ExpositionError(
                    f"unexpected data after '# EOF' (line {self._eof_line}): "
                    f"{_excerpt(lines[eof_index + 1])}",
                    self._eof_line + 1,
                )

    # --- slow paths: cache misses, comments, anything unusual ------------------------------

    def _new_stamp(self, text: str) -> int | None:
        """The timestamp ``text`` in milliseconds, remembered; None when it is not valid."""
        try:
            stamp = round(float(text) * 1000.0) if self.openmetrics else int(text)
        except (ValueError, OverflowError):
            return None
        if not _INT64_MIN <= stamp <= _INT64_MAX:
            return None
        if len(self._stamps) >= _MAX_REMEMBERED_STAMPS:
            self._stamps.clear()
        self._stamps[text] = stamp
        return stamp

    def _parse_unseen(
        self, line: str, head: str, last: str
    ) -> tuple[Labels, float, int | None] | None:
        """A line whose series text is not cached: str methods when the syntax is the usual
        one (``name{a="x",b="y"} value [timestamp]``), the full grammar otherwise."""
        if head.endswith("}") or ("{" not in head and " " not in head):
            series_text, value_text, stamp_text = head, last, ""
        else:
            series_text, _, value_text = head.rpartition(" ")
            stamp_text = last
        parsed = self._quick_series(series_text)
        if parsed is None:
            return self._parse_sample(line)
        name, labels = parsed
        try:
            value = float(value_text)
        except ValueError:
            return self._parse_sample(line)  # it explains what is wrong
        stamp = None
        if stamp_text:
            stamp = self._new_stamp(stamp_text)
            if stamp is None:
                return self._parse_sample(line)
        elif self.require_timestamps:
            raise _BadLine(_NO_TIMESTAMP)
        if name == self._created_name:
            return None
        return labels, value, stamp

    def _quick_series(self, series_text: str) -> tuple[str, Labels] | None:
        """Name and labels of a series text in the usual syntax, cached; None for any other.

        Without a backslash in the labels, every ``",`` ends a label value (a quote inside a
        value would have to be escaped), so ``str`` methods cut the labels apart exactly. The
        labels before the last one are usually shared by many series (a histogram's buckets,
        its sum and count), so they are validated and sorted once per parse.
        """
        if series_text.endswith("}"):
            brace = series_text.find("{")
            if brace <= 0:
                return None
            name = series_text[:brace]
            block = series_text[brace + 1 : -1]
            if "\\" in block:
                return None
            if block.endswith(","):
                block = block[:-1]
            if not block:
                pairs: list[tuple[str, str]] = []
            elif not block.endswith('"'):
                return None
            else:
                cut = block.rfind('",')
                head = block[:cut] if cut >= 0 else ""
                shared = self._shared.get(head)
                try:
                    if shared is None:
                        shared = self._shared_labels(head)
                    last_piece = block[cut + 2 : -1] if cut >= 0 else block[:-1]
                    last = self._pairs.get(last_piece) or self._new_pair(last_piece)
                except _NotCanonical:
                    return None
                shared_pairs, shared_names = shared
                if last[0] in shared_names:
                    return None  # the full parser explains the duplicate
                pairs = [*shared_pairs, last] if last[1] else [*shared_pairs]
        else:
            name, pairs = series_text, []
        if name not in self._metric_names:
            if _METRIC_NAME_RE.fullmatch(name) is None:
                return None
            self._metric_names.add(name)
        pairs.append((METRIC_NAME, name))
        pairs.sort()
        labels = tuple(pairs)
        if self._limits is not NO_LIMITS:
            _check_limits(labels, self._limits)
        self._cache._entries[series_text] = labels
        return name, labels

    def _shared_labels(self, head: str) -> tuple[tuple[tuple[str, str], ...], frozenset[str]]:
        """The labels of ``a="x",b="y`` (the last closing quote cut off): non-empty pairs, and
        all names (``__name__`` included, so a ``__name__`` label counts as a duplicate)."""
        pieces = head.split('",') if head else []
        pairs = [self._pairs.get(piece) or self._new_pair(piece) for piece in pieces]
        names = frozenset([METRIC_NAME, *(label for label, _ in pairs)])
        if len(names) != len(pairs) + 1:
            raise _NotCanonical  # a duplicate: the full parser explains it
        shared = (tuple(pair for pair in pairs if pair[1]), names)
        self._shared[head] = shared
        return shared

    def _new_pair(self, piece: str) -> tuple[str, str]:
        """``name="value`` (closing quote already cut off) as a pair, remembered for the parse."""
        label, equals, value = piece.partition('="')
        if not equals or '"' in value or _LABEL_NAME_RE.fullmatch(label) is None:
            raise _NotCanonical
        pair = (label, value)
        self._pairs[piece] = pair
        return pair

    def _parse_sample(self, line: str) -> tuple[Labels, float, int | None] | None:
        """A sample line the fast split could not take; None for a line without a sample."""
        start = _skip_blanks(line, 0)
        if start == len(line) or line[start] == "#":
            # A blank line, or blanks before a comment: fine in the text format only.
            if self.openmetrics:
                raise _BadLine("OpenMetrics allows no blank lines and no blanks before '#'")
            self._other_line(line[start:])
            return None
        name, pairs, end = _parse_series_at(line, start)
        labels = self._labels(line[:end], name, pairs)
        rest = line[end:]
        if self.openmetrics:
            exemplar = rest.find("#")
            if exemplar >= 0:
                _check_exemplar(rest[exemplar:])
                rest = rest[:exemplar]
        tokens = rest.split()
        if not tokens:
            raise _BadLine(f"metric {_short(name)} has no value")
        if len(tokens) > 2:
            raise _BadLine(f"unexpected text {_short(tokens[2])} after the timestamp")
        value = _parse_value(tokens[0])
        stamp = None
        if len(tokens) == 2:
            stamp = _parse_timestamp(tokens[1], self.openmetrics)
        elif self.require_timestamps:
            raise _BadLine(_NO_TIMESTAMP)
        if self._created_name is not None and name == self._created_name:
            return None
        return labels, value, stamp

    def _labels(self, series_text: str, name: str, pairs: list[tuple[str, str]]) -> Labels:
        entries = self._cache._entries
        cached = entries.get(series_text)
        if cached is not None:
            return cached
        labels = _build_labels(name, pairs, self._limits)
        entries[series_text] = labels
        return labels

    def _other_line(self, line: str) -> bool:
        """A blank or comment line; True for OpenMetrics's closing ``# EOF``."""
        if not line:
            if self.openmetrics:
                raise _BadLine("blank lines are not allowed in OpenMetrics")
            return False
        match = _METADATA.match(line)
        if match is None:
            if not self.openmetrics:
                return False  # an ordinary comment
            if line.rstrip(" \t") == "# EOF":
                return True
            raise _BadLine(
                "OpenMetrics allows only '# HELP', '# TYPE', '# UNIT' and '# EOF' comments"
            )
        kind = match.group(1)
        if kind == "UNIT" and not self.openmetrics:
            return False  # not part of the text format: an ordinary comment
        name, end = _metadata_name(line, match.end(), kind)
        rest = line[end:]
        if rest and rest[0] not in " \t":
            raise _BadLine(f"expected a space after the metric name in '# {kind}'")
        text = rest.strip(" \t")
        if name != self._family:
            self._family = name
            self._set_created(None)
        if kind == "TYPE":
            allowed = OPENMETRICS_TYPES if self.openmetrics else TEXT_TYPES
            if text not in allowed:
                expected = ", ".join(sorted(allowed))
                raise _BadLine(f"unknown metric type {_short(text)} (expected one of {expected})")
            self.types[name] = text
            if self.openmetrics and text in _CREATED_TYPES:
                self._set_created(name + "_created")
        elif kind == "UNIT" and text and not (name.endswith("_" + text)):
            raise _BadLine(f"unit {_short(text)} is not a suffix of the metric name {_short(name)}")
        return False

    def _set_created(self, created_name: str | None) -> None:
        self._created_name = created_name
        self._created_prefixes = (
            () if created_name is None else (created_name, f'{{"{created_name}"')
        )


_NO_TIMESTAMP = (
    "the sample has no timestamp; every sample of a backfill file needs one "
    "(Unix seconds after the value)"
)

# --- series text --------------------------------------------------------------------------

_METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_QUOTED = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_PAIR = rf"[ \t]*{_LABEL_NAME}[ \t]*=[ \t]*{_QUOTED}[ \t]*"
# The usual syntax in one match: name, then either a label block or a blank/end of line.
_SIMPLE_SERIES = re.compile(
    rf"({_METRIC_NAME})(?:[ \t]*\{{((?:{_PAIR},)*(?:{_PAIR})?[ \t]*)\}}|(?=[ \t]|\Z))"
)
_PAIRS = re.compile(rf'({_LABEL_NAME})[ \t]*=[ \t]*"([^"\\]*(?:\\.[^"\\]*)*)"')
_METRIC_NAME_AT = re.compile(_METRIC_NAME)
_METRIC_NAME_RE = re.compile(rf"{_METRIC_NAME}\Z")
_LABEL_NAME_RE = re.compile(rf"{_LABEL_NAME}\Z")
_LABEL_NAME_AT = re.compile(_LABEL_NAME)
_QUOTED_AT = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"')
# '# TYPE' with nothing after it is an ordinary comment, as in Prometheus.
_METADATA = re.compile(r"#[ \t]+(HELP|TYPE|UNIT)[ \t]+")
_ESCAPE = re.compile(r'\\[\\n"]')
_ESCAPES = {"\\\\": "\\", "\\n": "\n", '\\"': '"'}


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda match: _ESCAPES[match.group()], text)


def _skip_blanks(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _parse_series_at(line: str, start: int) -> tuple[str, list[tuple[str, str]], int]:
    """Metric name, raw label pairs and the end of the series text that starts at ``start``."""
    match = _SIMPLE_SERIES.match(line, start)
    if match is not None:
        name, block = match.group(1, 2)
        if not block:
            return name, [], match.end()
        pairs: list[tuple[str, str]] = _PAIRS.findall(block)
        if "\\" in block:
            pairs = [(label, _unescape(value)) for label, value in pairs]
        return name, pairs, match.end()
    return _scan_series(line, start)


def _scan_series(line: str, pos: int) -> tuple[str, list[tuple[str, str]], int]:
    """The complete series grammar, quoted UTF-8 names included; raises precise errors."""
    name: str | None = None
    match = _METRIC_NAME_AT.match(line, pos)
    if match is not None:
        name, pos = match.group(), match.end()
        pos_after_blanks = _skip_blanks(line, pos)
        if pos_after_blanks == len(line) or line[pos_after_blanks] != "{":
            if pos < len(line) and line[pos] not in " \t":
                bad = line[pos]
                raise _BadLine(
                    f"invalid character {_short(bad)} in metric name {_short(name + bad)}"
                )
            return name, [], pos
        pos = pos_after_blanks
    elif line[pos] != "{":
        if line[pos] == "<":
            raise _BadLine(
                "this is HTML or XML, not Prometheus metrics (is the URL the /metrics endpoint?)"
            )
        raise _BadLine(f"expected a metric name, found {_short(line[pos])}")
    pairs: list[tuple[str, str]] = []
    pos += 1  # the '{'
    while True:
        pos = _skip_blanks(line, pos)
        if pos == len(line):
            raise _BadLine("missing '}' at the end of the labels")
        if line[pos] == "}":
            pos += 1
            break
        if line[pos] == '"':
            token, pos = _quoted_at(line, pos, "quoted name")
            quoted = True
        else:
            label = _LABEL_NAME_AT.match(line, pos)
            if label is None:
                raise _BadLine(f"invalid label name at {_short(line[pos:])}")
            token, pos = label.group(), label.end()
            quoted = False
        pos = _skip_blanks(line, pos)
        if quoted and pos < len(line) and line[pos] in ",}":
            # A quoted string on its own is the metric name (Prometheus 3.x UTF-8 names).
            if name is not None:
                raise _BadLine(f"metric name given twice ({_short(name)} and {_short(token)})")
            name = token
        else:
            if pos == len(line) or line[pos] != "=":
                raise _BadLine(f"expected '=' after label name {_short(token)}")
            pos = _skip_blanks(line, pos + 1)
            if pos == len(line) or line[pos] != '"':
                raise _BadLine(f"the value of label {_short(token)} must be in double quotes")
            value, pos = _quoted_at(line, pos, f"value of label {_short(token)}")
            pairs.append((token, value))
        pos = _skip_blanks(line, pos)
        if pos < len(line) and line[pos] == ",":
            pos += 1
        elif pos == len(line) or line[pos] != "}":
            raise _BadLine("expected ',' or '}' after a label")
    if name is None:
        raise _BadLine("the series has no metric name")
    return name, pairs, pos


def _quoted_at(line: str, pos: int, what: str) -> tuple[str, int]:
    match = _QUOTED_AT.match(line, pos)
    if match is None:
        raise _BadLine(f"unterminated {what}: missing closing '\"'")
    return _unescape(match.group(1)), match.end()


def _metadata_name(line: str, pos: int, kind: str) -> tuple[str, int]:
    if pos < len(line) and line[pos] == '"':
        name, end = _quoted_at(line, pos, f"metric name in '# {kind}'")
    else:
        match = _METRIC_NAME_AT.match(line, pos)
        if match is None:
            raise _BadLine(f"'# {kind}' needs a valid metric name")
        name, end = match.group(), match.end()
    if not name:
        raise _BadLine(f"'# {kind}' has an empty metric name")
    return name, end


def _build_labels(name: str, pairs: list[tuple[str, str]], limits: ParseLimits) -> Labels:
    if not name:
        raise _BadLine("the metric name is empty")
    seen = {METRIC_NAME}
    for label, _ in pairs:
        if label in seen:
            if label == METRIC_NAME:
                raise _BadLine("the metric name is given twice (as name and as __name__)")
            raise _BadLine(f"label {_short(label)} is given twice")
        if not label:
            raise _BadLine("a label name is empty")
        seen.add(label)
    kept = [pair for pair in pairs if pair[1]]
    kept.append((METRIC_NAME, name))
    kept.sort()
    labels = tuple(kept)
    if limits is not NO_LIMITS:
        _check_limits(labels, limits)
    return labels


def _check_limits(labels: Labels, limits: ParseLimits) -> None:
    if limits.label_limit is not None and len(labels) > limits.label_limit:
        raise _BadLine(
            f"the series has {len(labels)} labels, more than label_limit {limits.label_limit}",
            limit=True,
        )
    name_limit = limits.label_name_length_limit
    value_limit = limits.label_value_length_limit
    for label, value in labels:
        if name_limit is not None and _byte_length(label) > name_limit:
            raise _BadLine(
                f"label name {_short(label)} is {_byte_length(label)} bytes long, more than "
                f"label_name_length_limit {name_limit}",
                limit=True,
            )
        if value_limit is not None and _byte_length(value) > value_limit:
            raise _BadLine(
                f"the value of label {_short(label)} is {_byte_length(value)} bytes long, "
                f"more than label_value_length_limit {value_limit}",
                limit=True,
            )


def _byte_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


# --- values, timestamps, exemplars ---------------------------------------------------------


def _parse_value(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise _BadLine(
            f"invalid value {_short(text)} (expected a number, NaN, +Inf or -Inf)"
        ) from None


def _parse_timestamp(text: str, openmetrics: bool) -> int:
    try:
        if openmetrics:
            seconds = float(text)
            if seconds != seconds or seconds in (float("inf"), float("-inf")):
                raise ValueError(text)
            stamp = round(seconds * 1000.0)
        else:
            stamp = int(text)
    except (ValueError, OverflowError):
        unit = "Unix seconds" if openmetrics else "integer milliseconds since the epoch"
        raise _BadLine(f"invalid timestamp {_short(text)} (expected {unit})") from None
    if not _INT64_MIN <= stamp <= _INT64_MAX:
        raise _BadLine(f"timestamp {_short(text)} is out of range")
    return stamp


_EXEMPLAR = re.compile(
    rf"#[ \t]+\{{((?:{_PAIR},)*(?:{_PAIR})?[ \t]*)\}}[ \t]+(\S+)(?:[ \t]+(\S+))?[ \t]*\Z"
)


def _check_exemplar(text: str) -> None:
    """An exemplar is ignored, but a malformed one fails the line (as in Prometheus)."""
    match = _EXEMPLAR.match(text)
    if match is None:
        raise _BadLine("malformed exemplar (expected '# {labels} value [timestamp]')")
    _parse_value(match.group(2))
    if match.group(3) is not None:
        _parse_timestamp(match.group(3), openmetrics=True)


def _short(text: str) -> str:
    """A token quoted for a message, cut short when long."""
    return repr(text) if len(text) <= _TOKEN_CHARS else repr(text[:_TOKEN_CHARS]) + "..."


def _excerpt(line: str) -> str:
    if len(line) <= _EXCERPT_CHARS:
        return repr(line)
    return repr(line[:_EXCERPT_CHARS]) + "..."
