"""Request ids: accept a well-formed incoming `X-Request-ID`, otherwise mint one.

The id is exposed to user code and to log records through a contextvar, so anything that runs
while a request is handled (handlers, SQL hooks, library loggers) can tag its output with it.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar

REQUEST_ID_HEADER = "x-request-id"
MAX_REQUEST_ID_LENGTH = 128

# Letters, digits and the few separators common id schemes use (UUIDs, ULIDs, trace ids,
# base64url). No spaces, quotes, or control characters, so the value is safe to reflect in a
# header and to write into a log line.
_WELL_FORMED = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:=+/-]{0,%d}" % (MAX_REQUEST_ID_LENGTH - 1))

request_id_var: ContextVar[str | None] = ContextVar("opsbook_request_id", default=None)


def get_request_id() -> str | None:
    """The id of the request being handled, or None outside a request."""
    return request_id_var.get()


def new_request_id() -> str:
    # 128 random bits as 32 hex digits, like uuid4().hex at a fifth of the cost.
    return os.urandom(16).hex()


def accept_request_id(raw: bytes | None) -> str:
    """The incoming id when it is well-formed, otherwise a fresh one (never the raw input)."""
    if raw is not None and _WELL_FORMED.fullmatch(raw):
        return raw.decode("ascii")
    return new_request_id()
