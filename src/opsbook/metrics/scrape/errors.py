"""The one exception a scrape fails with; its message is what users see as ``last_error``."""

from __future__ import annotations


class ScrapeError(Exception):
    """A scrape failed: the target is reported down and nothing of its body is stored.

    ``str()`` says what went wrong and, where it helps, what to change; it never holds the
    credentials of a target URL.
    """
