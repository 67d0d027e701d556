"""Errors a user can hit when opsbook opens or migrates its database.

Messages are complete sentences for the terminal: they name the (masked) URL and say what to do.
They never contain a password.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class; `str(error)` is the message to show the user."""


class DatabaseUrlError(StoreError):
    """The database URL cannot be used (malformed, unknown scheme, driver missing)."""


class DatabaseUnavailableError(StoreError):
    """The database could not be reached or opened."""


class MigrationError(StoreError):
    """A schema migration could not be planned or applied."""
