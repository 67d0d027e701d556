"""`opsbook.instrument`: health, metrics, request ids and JSON logs for any ASGI app.

    import opsbook.instrument
    app = opsbook.instrument(app, service="billing-api", version="1.4.2", checks=[...])
    opsbook.instrument.sqlalchemy(engine, threshold_ms=200)

The module itself is callable (it is `instrument_app`); `from opsbook.instrument import
instrument_app` is the same function for type checkers that dislike calling a module.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from opsbook.instrument.health.checks import (
    CPUCheck,
    DiskCheck,
    FunctionCheck,
    HealthCheck,
    HTTPCheck,
    JobCheck,
    MemoryCheck,
    RedisCheck,
    SQLAlchemyCheck,
)
from opsbook.instrument.health.model import Observation
from opsbook.instrument.logging import configure_logging
from opsbook.instrument.metrics import DEFAULT_BUCKETS, UNMATCHED_ROUTE
from opsbook.instrument.request_id import get_request_id
from opsbook.instrument.setup import instrument as instrument_app
from opsbook.instrument.sqlalchemy import instrument_sqlalchemy as sqlalchemy

__all__ = [
    "DEFAULT_BUCKETS",
    "UNMATCHED_ROUTE",
    "CPUCheck",
    "DiskCheck",
    "FunctionCheck",
    "HTTPCheck",
    "HealthCheck",
    "JobCheck",
    "MemoryCheck",
    "Observation",
    "RedisCheck",
    "SQLAlchemyCheck",
    "configure_logging",
    "get_request_id",
    "instrument_app",
    "sqlalchemy",
]


class _CallableModule(types.ModuleType):
    def __call__(self, app: Any, **options: Any) -> Any:
        return instrument_app(app, **options)


sys.modules[__name__].__class__ = _CallableModule
