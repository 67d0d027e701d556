"""Raising validation problems at a chosen location from inside a model validator.

A ``ValueError`` raised by a validator lands on the model itself; a ``ValidationError`` raised
there keeps its own locations (pydantic-core re-raises its line errors, prefixed with the
model's location). That is how cross-field rules point at the exact field they are about.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

Loc = tuple[str | int, ...]
_KNOWN_TYPES = frozenset(typing.get_args(ErrorType))


@dataclass(frozen=True, slots=True)
class Problem:
    loc: Loc
    type: str
    message: str
    input: Any = None
    ctx: dict[str, Any] = field(default_factory=dict)

    def details(self) -> InitErrorDetails:
        return InitErrorDetails(
            type=PydanticCustomError(self.type, self.message, self.ctx or None),
            loc=self.loc,
            input=self.input,
        )


def _redetail(error: Any) -> InitErrorDetails:
    # Rebuild line errors of a caught ValidationError so they can be raised again with ours.
    ctx = error.get("ctx")
    if error["type"] in _KNOWN_TYPES:
        details = InitErrorDetails(type=error["type"], loc=error["loc"], input=error["input"])
        if ctx:
            details["ctx"] = ctx
        return details
    # A custom error's message is already formatted; formatting it again with the same context
    # changes nothing unless a context value itself renders as "{key}".
    return InitErrorDetails(
        type=PydanticCustomError(error["type"], str(error["msg"]), ctx),
        loc=error["loc"],
        input=error["input"],
    )


def validation_error(
    title: str, problems: Sequence[Problem], caught: ValidationError | None = None
) -> ValidationError:
    """One ValidationError holding ``caught``'s errors (if any) followed by ``problems``."""
    line_errors = [_redetail(e) for e in caught.errors()] if caught is not None else []
    line_errors.extend(p.details() for p in problems)
    return ValidationError.from_exception_data(title, line_errors, hide_input=True)
