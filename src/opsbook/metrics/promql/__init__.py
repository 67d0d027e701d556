"""opsbook's PromQL engine: ``promql-parser`` for the syntax, NumPy for the evaluation."""

from opsbook.metrics.promql.engine import Engine, EngineOptions
from opsbook.metrics.promql.parser import parse_expr, parse_series_selector

__all__ = ["Engine", "EngineOptions", "parse_expr", "parse_series_selector"]
