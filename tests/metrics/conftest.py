"""Shared set-up of the metrics tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def default_structlog() -> Iterator[None]:
    # The instrument tests configure structlog process-wide (a JSON sink, cached loggers);
    # the metrics tests capture log events with structlog.testing and need the defaults.
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
