"""Parser of Prometheus's PromQL test scripting language (``*.test`` files).

The language is described in ``TEST-LANGUAGE.md`` next to Prometheus's test files. A script is a
sequence of commands:

- ``load <interval>`` / ``load_with_nhcb <interval>`` followed by series lines
  ``metric{label="value"} <points>``;
- ``clear``;
- ``eval instant at <time> <expr>`` / ``eval range from <t> to <t> step <d> <expr>`` followed by
  ``expect …`` lines and the expected result (series lines, or a single number for a scalar).
  The deprecated spellings ``eval_fail``, ``eval_warn``, ``eval_info``, ``eval_ordered``,
  ``expected_fail_message`` and ``expected_fail_regexp`` are read as the ``expect`` lines they
  stand for.

Points use the ``promtool test rules`` expanding syntax: ``1 2 3``, ``_`` (no sample),
``_x3`` (three gaps), ``stale``, ``1x3`` (four times 1), ``1+2x3`` (1 3 5 7), ``1-1x3``,
``-1+1x3``. Native-histogram points ``{{…}}`` are recognized but not decoded: opsbook stores
floats only, and the runner skips what needs them.

Parsing follows Prometheus's own reader where it matters for which files are valid: lines are
trimmed, a line starting with ``#`` is blank, and a blank line ends a ``load``/``eval`` block.
This module does no I/O; :func:`parse_script` takes the text.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from opsbook.metrics.model import (
    METRIC_NAME,
    STALE_NAN,
    Labels,
    labels_from_mapping,
)


class ScriptError(Exception):
    """A test script that cannot be read or does not follow the language."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        self.source = source
        self.line = line
        self.message = message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class HistogramPoint:
    """A native-histogram point ``{{…}}``, kept as written (``text`` is between the braces)."""

    text: str


Point = float | HistogramPoint | None
"""One position of a series: a float (possibly the stale marker), a histogram, or None for ``_``."""


@dataclass(frozen=True, slots=True)
class SeriesSpec:
    """A series line: its labels (``__name__`` included) and its expanded points."""

    labels: Labels
    points: tuple[Point, ...]
    line: int

    @property
    def has_histograms(self) -> bool:
        return any(isinstance(point, HistogramPoint) for point in self.points)


@dataclass(frozen=True, slots=True)
class Load:
    """``load <interval>``: the first point of each series is at t=0, then one per interval."""

    line: int
    interval_ms: int
    series: tuple[SeriesSpec, ...]
    with_nhcb: bool = False


@dataclass(frozen=True, slots=True)
class Clear:
    line: int


class ExpectKind(enum.Enum):
    FAIL = "fail"
    WARN = "warn"
    NO_WARN = "no_warn"
    INFO = "info"
    NO_INFO = "no_info"
    ORDERED = "ordered"


@dataclass(frozen=True, slots=True)
class Expectation:
    """An ``expect`` line (or the deprecated spelling it stands for).

    ``message`` is matched exactly, ``pattern`` is searched for (unanchored, as Go's
    ``MatchString``); with neither, any message matches.
    """

    kind: ExpectKind
    line: int
    message: str | None = None
    pattern: re.Pattern[str] | None = None

    def matches(self, text: str) -> bool:
        if self.message is not None:
            return text == self.message
        if self.pattern is not None:
            return self.pattern.search(text) is not None
        return True

    def describe(self) -> str:
        if self.message is not None:
            return f"message {self.message!r}"
        if self.pattern is not None:
            return f"pattern {self.pattern.pattern!r}"
        return "any message"


@dataclass(frozen=True, slots=True)
class _EvalBase:
    """What instant and range evals share: the expression, expect lines, expected result.

    ``expected_scalar`` is set when the result is a single number line, ``expected_series``
    otherwise (empty when no result is expected).
    """

    line: int
    expr: str
    expectations: tuple[Expectation, ...] = ()
    expected_series: tuple[SeriesSpec, ...] = ()
    expected_scalar: float | None = None

    def expecting(self, kind: ExpectKind) -> tuple[Expectation, ...]:
        return tuple(e for e in self.expectations if e.kind is kind)

    @property
    def expects_failure(self) -> bool:
        return any(e.kind is ExpectKind.FAIL for e in self.expectations)

    @property
    def ordered(self) -> bool:
        return any(e.kind is ExpectKind.ORDERED for e in self.expectations)


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalInstant(_EvalBase):
    time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalRange(_EvalBase):
    start_ms: int
    end_ms: int
    step_ms: int


Eval = EvalInstant | EvalRange
Command = Load | Clear | EvalInstant | EvalRange


@dataclass(frozen=True, slots=True)
class Script:
    source: str
    commands: tuple[Command, ...] = ()

    @property
    def evals(self) -> list[Eval]:
        return [c for c in self.commands if isinstance(c, EvalInstant | EvalRange)]


# ---------------------------------------------------------------------------------------------
# Durations and numbers


_DURATION_RE = re.compile(
    r"(?:(?P<y>\d+)y)?(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?"
    r"(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?(?:(?P<ms>\d+)ms)?\Z"
)
_UNIT_MS = {
    "y": 365 * 86_400_000,
    "w": 7 * 86_400_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1_000,
    "ms": 1,
}
_MAX_DURATION_MS = (1 << 63) // 1_000_000  # Go's time.Duration counts nanoseconds in an int64.


def parse_duration(text: str) -> int:
    """A Prometheus duration (``1h30m``, ``5m``, ``0``) in milliseconds; ValueError if invalid.

    Units must come largest first and each at most once, as in Prometheus's ``ParseDuration``;
    a bare number other than ``0`` is not a duration.
    """
    if text == "0":
        return 0
    match = _DURATION_RE.match(text)
    if not text or match is None:
        raise ValueError(f"not a duration: {text!r} (write e.g. 30s, 5m, 1h30m)")
    total = sum(int(v) * _UNIT_MS[unit] for unit, v in match.groupdict().items() if v is not None)
    if total > _MAX_DURATION_MS:
        raise ValueError(f"duration {text!r} is too long")
    return total


_GO_INT_RE = re.compile(
    r"[+-]?(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|0(?:_?[0-7])*|[1-9](?:_?\d)*)\Z"
)
_GO_DECIMAL_FLOAT_RE = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)\Z", re.IGNORECASE
)
_GO_HEX_FLOAT_RE = re.compile(
    r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+\Z"
)
_INT64_MAX = (1 << 63) - 1


def parse_number(text: str) -> float | None:
    """A number as Prometheus's test reader takes it (Go integer literal, else Go float); or None.

    Used for the expected result of a scalar query, a line that is just a number.
    """
    if _GO_INT_RE.match(text):
        digits = text.replace("_", "")
        sign = -1 if digits.startswith("-") else 1
        body = digits.lstrip("+-")
        if len(body) > 1 and body[0] == "0" and body[1] in "0123456789_":
            value = int(body, 8)  # Go reads a leading 0 as octal
        else:
            value = int(body, 0)
        if value <= _INT64_MAX:
            return float(sign * value)
    if _GO_DECIMAL_FLOAT_RE.match(text):
        return float(text)
    if _GO_HEX_FLOAT_RE.match(text):
        return float.fromhex(text)
    return None


# ---------------------------------------------------------------------------------------------
# Series lines: metric{labels} points


# In series descriptions Prometheus's lexer has no hexadecimal numbers ("0x3" is 0 three times).
_SERIES_NUMBER = r"(?:[iI][nN][fF]|[nN][aA][nN]|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
_SERIES_ITEM_RE = re.compile(
    rf"(?P<start>[+-]?{_SERIES_NUMBER})"
    rf"(?:(?P<delta>[+-]{_SERIES_NUMBER})x(?P<steps>\d+)|x(?P<repeat>\d+))?\Z"
)
_GAPS_RE = re.compile(r"_x(?P<count>\d+)\Z")
_HISTOGRAM_ITEM_RE = re.compile(
    r"\{\{(?P<start>.*?)\}\}(?:(?P<op>[+-])\{\{(?P<delta>.*?)\}\}x(?P<steps>\d+)|x(?P<repeat>\d+))?\Z",
    re.DOTALL,
)
_IDENT_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# More points than this in one series line is a typo (e.g. 1+1x100000000), not a test.
_MAX_POINTS = 1_000_000


class _LineError(ValueError):
    """A problem on the current line; the caller adds file and line number."""


def _expand_item(item_text: str) -> list[Point]:
    if item_text == "_":
        return [None]
    if item_text == "stale":
        return [STALE_NAN]
    gaps = _GAPS_RE.match(item_text)
    if gaps is not None:
        return [None] * _checked_count(int(gaps["count"]), item_text)
    if item_text.startswith("{{"):
        return _expand_histogram_item(item_text)
    item = _SERIES_ITEM_RE.match(item_text)
    if item is None:
        raise _LineError(
            f"invalid point {item_text!r}: expected a number, _, stale, "
            "or an expansion like 1x3, 1+2x3, 5-1x4, _x2"
        )
    value = float(item["start"])
    if item["repeat"] is not None:
        return [value] * (_checked_count(int(item["repeat"]), item_text) + 1)
    if item["delta"] is None:
        return [value]
    delta = float(item["delta"])
    points: list[Point] = []
    # Repeated addition, not start + i*delta: the expected values in the test files were produced
    # this way, and the two differ in the last bits for fractional steps.
    for _ in range(_checked_count(int(item["steps"]), item_text) + 1):
        points.append(value)
        value += delta
    return points


def _expand_histogram_item(token: str) -> list[Point]:
    item = _HISTOGRAM_ITEM_RE.match(token)
    if item is None:
        raise _LineError(
            f"invalid native histogram point {token!r}: expected {{{{…}}}}, {{{{…}}}}xN "
            "or {{…}}+{{…}}xN"
        )
    point = HistogramPoint(item["start"].strip())
    if item["repeat"] is not None:
        return [point] * (_checked_count(int(item["repeat"]), token) + 1)
    if item["steps"] is None:
        return [point]
    # The histogram arithmetic is not evaluated; the runner only needs to know that (and where)
    # there are histogram samples.
    return [point] * (_checked_count(int(item["steps"]), token) + 1)


def _checked_count(count: int, token: str) -> int:
    if count > _MAX_POINTS:
        raise _LineError(f"{token!r} expands to more than {_MAX_POINTS} points")
    return count


def _split_points(text: str) -> list[str]:
    """Whitespace-separated tokens, with ``{{…}}`` (which contains spaces) kept in one token."""
    tokens: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("{{", i):
            end = text.find("}}", i + 2)
            if end < 0:
                raise _LineError("unterminated native histogram: '{{' without a closing '}}'")
            current.append(text[i : end + 2])
            i = end + 2
        elif text[i] in " \t":
            if current:
                tokens.append("".join(current))
                current = []
            i += 1
        else:
            current.append(text[i])
            i += 1
    if current:
        tokens.append("".join(current))
    return tokens


def expand_points(text: str) -> list[Point]:
    """The points of a series line's value part, expanded (``1+1x2`` → 1, 2, 3)."""
    points: list[Point] = []
    for token in _split_points(text):
        points.extend(_expand_item(token))
        if len(points) > _MAX_POINTS:
            raise _LineError(f"the series has more than {_MAX_POINTS} points")
    return points


_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
}


def _read_quoted(text: str, pos: int) -> tuple[str, int]:
    """A Go string literal (``"…"``, ``'…'`` or a raw ``\\`…\\```) at ``pos``; value and end."""
    quote = text[pos]
    if quote == "`":
        end = text.find("`", pos + 1)
        if end < 0:
            raise _LineError("unterminated raw string (missing closing backtick)")
        return text[pos + 1 : end], end + 1
    out = bytearray()
    i = pos + 1
    while i < len(text):
        char = text[i]
        if char == quote:
            # \x escapes may produce bytes that are not UTF-8; keep them losslessly.
            return out.decode("utf-8", "surrogateescape"), i + 1
        if char != "\\":
            out += char.encode("utf-8", "surrogateescape")
            i += 1
            continue
        if i + 1 >= len(text):
            break
        code = text[i + 1]
        if code in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[code].encode()
            i += 2
        elif code == quote:
            out += quote.encode()
            i += 2
        elif code in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[code]
            digits = text[i + 2 : i + 2 + width]
            if len(digits) != width or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                raise _LineError(f"invalid escape \\{code}{digits} in a quoted string")
            number = int(digits, 16)
            if code == "x":
                out.append(number)
            else:
                try:
                    out += chr(number).encode("utf-8")
                except (ValueError, UnicodeEncodeError):
                    raise _LineError(f"invalid Unicode escape \\{code}{digits}") from None
            i += 2 + width
        elif code in "01234567":
            digits = text[i + 1 : i + 4]
            if not re.fullmatch(r"[0-7]{3}", digits) or int(digits, 8) > 255:
                raise _LineError(f"invalid octal escape \\{digits} in a quoted string")
            out.append(int(digits, 8))
            i += 4
        else:
            raise _LineError(f"unknown escape sequence \\{code} in a quoted string")
    raise _LineError(f"unterminated quoted string (missing closing {quote})")


def _skip_blanks(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _read_label_set(text: str, pos: int, labels: dict[str, str]) -> int:
    """The ``{…}`` part starting at ``pos`` (at ``{``) into ``labels``; returns the end."""
    pos += 1
    while True:
        pos = _skip_blanks(text, pos)
        if pos >= len(text):
            raise _LineError("unterminated label set: missing '}'")
        if text[pos] == "}":
            return pos + 1
        if text[pos] in "\"'`":
            name, pos = _read_quoted(text, pos)
        else:
            ident = _LABEL_NAME_RE.match(text, pos)
            if ident is None:
                raise _LineError(f"expected a label name at {text[pos : pos + 20]!r}")
            name, pos = ident.group(), ident.end()
        pos = _skip_blanks(text, pos)
        if pos < len(text) and text[pos] == "=":
            pos = _skip_blanks(text, pos + 1)
            if pos >= len(text) or text[pos] not in "\"'`":
                raise _LineError(f'label {name!r} needs a quoted value, e.g. {name}="value"')
            value, pos = _read_quoted(text, pos)
        elif pos < len(text) and text[pos] in ",}":
            # A bare quoted string is the metric name: {"my.metric", job="x"}.
            name, value = METRIC_NAME, name
        else:
            raise _LineError(f"expected '=' after label name {name!r}")
        if name in labels:
            raise _LineError(f"label {name!r} is given twice")
        if not name:
            raise _LineError("a label name cannot be empty")
        labels[name] = value
        pos = _skip_blanks(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos >= len(text) or text[pos] != "}":
            raise _LineError("expected ',' or '}' in the label set")


def parse_series_line(text: str, line: int) -> SeriesSpec:
    """``metric{a="b"} 1 2+1x3 _ stale`` (the metric name, the braces and the points optional)."""
    labels: dict[str, str] = {}
    pos = 0
    name = _IDENT_RE.match(text)
    if name is not None:
        labels[METRIC_NAME] = name.group()
        pos = name.end()
    if pos < len(text) and text[pos] == "{":
        pos = _read_label_set(text, pos, labels)
    if pos == 0:
        raise _LineError(f'expected a series like metric{{label="value"}} 1 2 3, got {text!r}')
    if pos < len(text) and text[pos] not in " \t":
        raise _LineError(f"expected a space between the series and its points at {text[pos:]!r}")
    points = expand_points(text[pos:])
    return SeriesSpec(labels_from_mapping(labels), tuple(points), line)


# ---------------------------------------------------------------------------------------------
# Commands


_LOAD_RE = re.compile(r"load(?:_(?P<nhcb>with_nhcb))?\s+(?P<interval>\S+)\Z")
_EVAL_INSTANT_RE = re.compile(
    r"eval(?:_(?P<mod>fail|warn|ordered|info))?\s+instant\s+(?:at\s+(?P<at>\S+)\s+)?(?P<expr>.+)\Z"
)
_EVAL_RANGE_RE = re.compile(
    r"eval(?:_(?P<mod>fail|warn|info))?\s+range\s+from\s+(?P<start>\S+)\s+to\s+(?P<end>\S+)"
    r"\s+step\s+(?P<step>\S+)\s+(?P<expr>.+)\Z"
)
_EXPECT_RE = re.compile(
    r"expect\s+(?P<kind>ordered|fail|warn|no_warn|info|no_info)"
    r"(?:\s+(?P<how>regex|msg):(?P<text>.+))?\Z"
)
_LEGACY_MODIFIERS = {
    "fail": ExpectKind.FAIL,
    "warn": ExpectKind.WARN,
    "info": ExpectKind.INFO,
    "ordered": ExpectKind.ORDERED,
}
_EVAL_SYNTAX = (
    "write 'eval instant at <time> <expr>' or 'eval range from <start> to <end> step <step> <expr>'"
)


def _script_lines(text: str) -> list[str]:
    """Trimmed lines; comment lines become blank (so, like blank lines, they end a block)."""
    lines = []
    for raw in text.split("\n"):
        stripped = raw.strip()
        lines.append("" if stripped.startswith("#") else stripped)
    return lines


def parse_script(text: str, source: str = "<script>") -> Script:
    """Parse a whole test script; :class:`ScriptError` (with ``source:line``) when invalid."""
    parser = _Parser(_script_lines(text), source)
    return Script(source, tuple(parser.commands()))


class _Parser:
    def __init__(self, lines: list[str], source: str) -> None:
        self.lines = lines
        self.source = source
        self.index = 0  # 0-based index of the next line to read

    def error(self, index: int, message: str) -> ScriptError:
        return ScriptError(self.source, index + 1, message)

    def commands(self) -> list[Command]:
        commands: list[Command] = []
        while self.index < len(self.lines):
            line = self.lines[self.index]
            if not line:
                self.index += 1
                continue
            word = line.split(None, 1)[0]
            if word.lower() == "clear":
                commands.append(Clear(self.index + 1))
                self.index += 1
            elif word.startswith("load"):
                commands.append(self.load())
            elif word.startswith("eval"):
                commands.append(self.eval())
            else:
                raise self.error(
                    self.index, f"unknown command {line!r}: expected load, clear or eval"
                )
        return commands

    def block(self) -> list[tuple[int, str]]:
        """The indexes and texts of the lines after a command, up to a blank line."""
        block = []
        start = self.index + 1
        end = start
        while end < len(self.lines) and self.lines[end]:
            block.append((end, self.lines[end]))
            end += 1
        return block

    def load(self) -> Load:
        head_index = self.index
        head = _LOAD_RE.match(self.lines[head_index])
        if head is None:
            raise self.error(
                head_index, "invalid load command: write 'load <interval>', e.g. load 5m"
            )
        try:
            interval = parse_duration(head["interval"])
        except ValueError as exc:
            raise self.error(head_index, f"invalid load interval: {exc}") from None
        by_labels: dict[Labels, SeriesSpec] = {}
        block = self.block()
        for index, text in block:
            try:
                spec = parse_series_line(text, index + 1)
            except _LineError as exc:
                raise self.error(index, str(exc)) from None
            # As in Prometheus, a series given twice in one load keeps its last definition.
            by_labels.pop(spec.labels, None)
            by_labels[spec.labels] = spec
        self.index = head_index + 1 + len(block)
        return Load(head_index + 1, interval, tuple(by_labels.values()), head["nhcb"] is not None)

    def eval(self) -> Eval:
        head_index = self.index
        head_line = self.lines[head_index]
        instant = _EVAL_INSTANT_RE.match(head_line)
        ranged = None if instant else _EVAL_RANGE_RE.match(head_line)
        if instant is None and ranged is None:
            raise self.error(head_index, f"invalid eval command: {_EVAL_SYNTAX}")
        head = instant or ranged
        assert head is not None
        expr = head["expr"].strip()
        modifier = head["mod"]
        expectations: list[Expectation] = []
        if modifier is not None:
            expectations.append(Expectation(_LEGACY_MODIFIERS[modifier], head_index + 1))

        series: dict[Labels, SeriesSpec] = {}
        scalar: float | None = None
        block = self.block()
        consumed = 0
        expect_lines: list[Expectation] = []
        for index, text in block:
            consumed += 1
            if text.startswith(("expected_fail_message", "expected_fail_regexp")):
                expectations.append(self.legacy_fail_expectation(index, text, modifier))
                break  # in Prometheus's reader this line ends the eval block
            # A metric named "expect" can still be written as expect{}.
            if text.split(" ", 1)[0] == "expect":
                expect_lines.append(self.expectation(index, text))
                self.validate_expect_lines(index, expect_lines)
                expectations.append(expect_lines[-1])
                continue
            number = parse_number(text)
            if number is not None:
                if series:
                    raise self.error(index, "an eval expects either series or one scalar, not both")
                scalar = number
                break  # a scalar result is the last line of the block
            try:
                spec = parse_series_line(text, index + 1)
            except _LineError as exc:
                raise self.error(index, str(exc)) from None
            if instant is not None and len(spec.points) != 1:
                raise self.error(
                    index,
                    f"an instant eval expects one value per series, got {len(spec.points)}",
                )
            series[spec.labels] = spec
        self.index = head_index + 1 + consumed

        line = head_index + 1
        if instant is not None:
            if instant["at"] is None:
                raise self.error(head_index, f"eval instant needs a time: {_EVAL_SYNTAX}")
            time_ms = self.duration(head_index, instant["at"], "evaluation time")
            return EvalInstant(
                line, expr, tuple(expectations), tuple(series.values()), scalar, time_ms=time_ms
            )
        assert ranged is not None
        start_ms = self.duration(head_index, ranged["start"], "start time")
        end_ms = self.duration(head_index, ranged["end"], "end time")
        step_ms = self.duration(head_index, ranged["step"], "step")
        if end_ms < start_ms:
            raise self.error(
                head_index,
                f"the end time {ranged['end']} is before the start time {ranged['start']}",
            )
        return EvalRange(
            line,
            expr,
            tuple(expectations),
            tuple(series.values()),
            scalar,
            start_ms=start_ms,
            end_ms=end_ms,
            step_ms=step_ms,
        )

    def duration(self, index: int, text: str, what: str) -> int:
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise self.error(index, f"invalid {what}: {exc}") from None

    def expectation(self, index: int, text: str) -> Expectation:
        match = _EXPECT_RE.match(text)
        if match is None:
            raise self.error(
                index,
                "invalid expect line: write 'expect <fail|warn|no_warn|info|no_info|ordered>' "
                "optionally followed by 'msg: <text>' or 'regex: <pattern>'",
            )
        kind = ExpectKind(match["kind"])
        how, message = match["how"], (match["text"] or "").strip()
        if how is not None and kind in (ExpectKind.ORDERED, ExpectKind.NO_WARN, ExpectKind.NO_INFO):
            raise self.error(index, f"'expect {kind.value}' takes no {how}")
        if how == "msg":
            return Expectation(kind, index + 1, message=message)
        if how == "regex":
            return Expectation(kind, index + 1, pattern=self.regex(index, message))
        return Expectation(kind, index + 1)

    def legacy_fail_expectation(self, index: int, text: str, modifier: str | None) -> Expectation:
        keyword, _, rest = text.partition(" ")
        if modifier != "fail":
            raise self.error(index, f"{keyword} is only allowed after eval_fail")
        if keyword == "expected_fail_message":
            return Expectation(ExpectKind.FAIL, index + 1, message=rest.strip())
        if keyword == "expected_fail_regexp":
            return Expectation(ExpectKind.FAIL, index + 1, pattern=self.regex(index, rest.strip()))
        raise self.error(index, f"unknown line {keyword!r}: expected expected_fail_message/regexp")

    def regex(self, index: int, pattern: str) -> re.Pattern[str]:
        try:
            return re.compile(pattern)
        except re.error as exc:
            raise self.error(index, f"invalid regular expression {pattern!r}: {exc}") from None

    def validate_expect_lines(self, index: int, expect_lines: list[Expectation]) -> None:
        kinds = [e.kind for e in expect_lines]
        for a, b in ((ExpectKind.INFO, ExpectKind.NO_INFO), (ExpectKind.WARN, ExpectKind.NO_WARN)):
            if a in kinds and b in kinds:
                raise self.error(index, f"'expect {a.value}' and 'expect {b.value}' contradict")
        if kinds.count(ExpectKind.FAIL) > 1:
            raise self.error(index, "only one 'expect fail' line is allowed per eval")
