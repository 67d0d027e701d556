"""Prometheus's PromQL test scripts (``*.test``) as a conformance suite for opsbook's engine.

:mod:`.script` parses the test language; :mod:`.runner` runs a script against an engine and
judges each ``eval`` like Prometheus's ``promqltest`` package. ``opsbook promql test`` is the CLI.
"""

from opsbook.metrics.promqltest.runner import (
    CaseResult,
    CaseStatus,
    EngineFactory,
    FileResult,
    QueryEngine,
    opsbook_engine,
    read_script,
    run_script,
)
from opsbook.metrics.promqltest.script import Script, ScriptError, parse_script

__all__ = [
    "CaseResult",
    "CaseStatus",
    "EngineFactory",
    "FileResult",
    "QueryEngine",
    "Script",
    "ScriptError",
    "opsbook_engine",
    "parse_script",
    "read_script",
    "run_script",
]
