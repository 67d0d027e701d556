"""JSON logs: one object per line, for opsbook's own events and for stdlib `logging` records.

Logging is process-wide, like `logging` itself: the last `configure_logging()` call decides where
lines go and which service fields they carry. Every line has `timestamp`, `level`, `logger`,
`message`, the service fields, and `request_id` while a request is being handled.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import structlog
from structlog.typing import EventDict, WrappedLogger

from opsbook.instrument.request_id import request_id_var

_LEVEL_NAMES = {
    "debug": "DEBUG",
    "info": "INFO",
    "warn": "WARNING",
    "warning": "WARNING",
    "error": "ERROR",
    "exception": "ERROR",
    "critical": "CRITICAL",
    "fatal": "CRITICAL",
}
_LEADING_KEYS = ("timestamp", "level", "logger", "message")
# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's copy of the message with ANSI colour codes
}


class LineSink:
    """Where JSON lines go. One lock for every writer so lines never interleave."""

    def __init__(self, stream: BinaryIO | _TextAsBinary, *, owned: bool = False) -> None:
        self._stream = stream
        self._owned = owned
        self._lock = threading.Lock()

    @classmethod
    def to_path(cls, path: str | Path) -> LineSink:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        return cls(target.open("ab"), owned=True)

    @classmethod
    def to_stdout(cls) -> LineSink:
        buffer = getattr(sys.stdout, "buffer", None)
        # Notebooks and test runners replace stdout with text-only streams.
        return cls(buffer if buffer is not None else _TextAsBinary(sys.stdout))

    def write(self, line: bytes) -> None:
        with self._lock:
            # Flushed per line: a crash loses no line that was logged before it.
            self._stream.write(line + b"\n")
            self._stream.flush()

    def close(self) -> None:
        if self._owned:
            with self._lock:
                self._stream.close()


class _TextAsBinary:
    """A text stream seen as the binary stream LineSink writes to."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, data: bytes) -> int:
        return int(self._stream.write(data.decode("utf-8")))

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:
        self._stream.close()


@dataclass
class _LogState:
    sink: LineSink
    fields: Mapping[str, str]
    level: int = logging.INFO
    configured: bool = False


_state = _LogState(sink=LineSink.to_stdout(), fields={})


class _SinkLogger:
    """The structlog "wrapped logger": hands rendered lines to the current sink."""

    def msg(self, message: bytes) -> None:
        _state.sink.write(message)

    debug = info = warn = warning = error = critical = exception = fatal = log = msg


def _add_context(_: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    event_dict["level"] = _LEVEL_NAMES.get(method_name, method_name.upper())
    if "timestamp" not in event_dict:
        event_dict["timestamp"] = _utc_now()
    for key, value in _state.fields.items():
        event_dict.setdefault(key, value)
    if "request_id" not in event_dict:
        request_id = request_id_var.get()
        if request_id is not None:
            event_dict["request_id"] = request_id
    return event_dict


_second_cache: tuple[int, str] = (-1, "")


def _utc_now(created: float | None = None) -> str:
    """ISO 8601 UTC with milliseconds. The date part is formatted once per second: this runs
    for every request line."""
    global _second_cache
    now = time.time() if created is None else created
    second = int(now)
    cached_second, prefix = _second_cache
    if second != cached_second:
        prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second_cache = (second, prefix)
    return f"{prefix}.{int((now - second) * 1000):03d}Z"


def _render(_: WrappedLogger, __: str, event_dict: EventDict) -> bytes:
    if "event" in event_dict:
        event_dict["message"] = event_dict.pop("event")
    ordered = {key: event_dict.pop(key) for key in _LEADING_KEYS if key in event_dict}
    ordered.update(event_dict)
    return orjson.dumps(ordered, default=str)


_PROCESSORS: list[Callable[..., Any]] = [
    _add_context,
    structlog.processors.format_exc_info,
    _render,
]


class JsonLogHandler(logging.Handler):
    """Renders stdlib `logging` records (uvicorn, SQLAlchemy, httpx, user code) as JSON lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event: dict[str, Any] = {
                "timestamp": _utc_now(record.created),
                "logger": record.name,
                "event": record.getMessage(),
            }
            for key, value in record.__dict__.items():
                if key not in _RECORD_ATTRS and not key.startswith("_"):
                    event[key] = value
            if record.exc_info:
                event["exc_info"] = record.exc_info
            method_name = record.levelname.lower()
            rendered: Any = event
            for processor in _PROCESSORS:
                rendered = processor(None, method_name, rendered)
            _state.sink.write(rendered)
        except Exception:
            self.handleError(record)


def configure_logging(
    *,
    service: str,
    version: str,
    environment: str,
    level: int | str = logging.INFO,
    log_file: str | Path | None = None,
    silence_server_access_log: bool = True,
) -> None:
    """Send structlog and stdlib logging, process-wide, to one JSON-lines sink."""
    numeric_level = logging.getLevelName(level) if isinstance(level, str) else level
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING or ERROR")
    previous = _state.sink
    _state.sink = LineSink.to_path(log_file) if log_file is not None else LineSink.to_stdout()
    _state.fields = {"service": service, "version": version, "environment": environment}
    _state.level = numeric_level
    _state.configured = True
    if previous is not _state.sink:
        previous.close()

    structlog.configure(
        processors=_PROCESSORS,
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=lambda *_: _SinkLogger(),
        cache_logger_on_first_use=True,
    )

    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, JsonLogHandler):
            root.removeHandler(handler)
    root.addHandler(JsonLogHandler())
    root.setLevel(numeric_level)

    # Servers install their own plain-text handlers; route their records through ours instead.
    for name in ("uvicorn", "uvicorn.error", "gunicorn", "gunicorn.error"):
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
    if silence_server_access_log:
        # The request line opsbook writes replaces the server's, which has no request id.
        for name in ("uvicorn.access", "gunicorn.access"):
            logging.getLogger(name).disabled = True


UserIdHook = Callable[[MutableMapping[str, Any]], "str | None"]


class AccessLog:
    """The one line per request: who asked what, what came back, how long it took."""

    def __init__(self, *, slow_request_ms: float, user_id: UserIdHook | None = None) -> None:
        self._slow_ms = slow_request_ms
        self._user_id = user_id
        self._logger = structlog.get_logger("opsbook.access").bind(logger="opsbook.access")
        self._hook_logger = logging.getLogger("opsbook.instrument")

    def emit(
        self,
        scope: MutableMapping[str, Any],
        *,
        route: str,
        status: int,
        duration_s: float,
    ) -> None:
        duration_ms = round(duration_s * 1000, 3)
        client = scope.get("client")
        fields: dict[str, Any] = {
            "method": scope["method"],
            "route": route,
            "path": scope["path"],
            "status": status,
            "duration_ms": duration_ms,
            "client": client[0] if client else None,
        }
        if self._user_id is not None:
            fields["user_id"] = self._call_user_id_hook(scope)
        slow = duration_ms >= self._slow_ms
        if slow:
            fields["slow"] = True
            fields["slow_request_ms"] = self._slow_ms
        if _state.configured:
            self._write_direct(slow, fields)
        elif slow:
            self._logger.warning("slow request", **fields)
        else:
            self._logger.info("request", **fields)

    @staticmethod
    def _write_direct(slow: bool, fields: dict[str, Any]) -> None:
        """The line the processor chain would render, without its per-call overhead: this is
        the one line every request writes."""
        if _state.level > (logging.WARNING if slow else logging.INFO):
            return
        event: dict[str, Any] = {
            "timestamp": _utc_now(),
            "level": "",  # set by _add_context; placed here to keep the key order
            "logger": "opsbook.access",
            "message": "slow request" if slow else "request",
        }
        event.update(fields)
        _add_context(None, "warning" if slow else "info", event)
        _state.sink.write(orjson.dumps(event, default=str))

    def _call_user_id_hook(self, scope: MutableMapping[str, Any]) -> str | None:
        assert self._user_id is not None
        try:
            value = self._user_id(scope)
        except Exception as exc:
            # A broken hook must not lose the request line; say what broke instead.
            self._hook_logger.warning(
                "user_id hook raised %s; logging the request without user_id",
                type(exc).__name__,
            )
            return None
        return None if value is None else str(value)
