"""Queries and state changes of the catalog. Callers own the transaction (these only flush)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsbook.catalog.models import ENVIRONMENT_MAX, NAME_MAX, URL_MAX, Service, ServiceRead
from opsbook.store.base import utc_now


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A service as configured: what `sync_services` makes the table match."""

    name: str
    environment: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class SyncResult:
    """Names per outcome, each sorted."""

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed)


class InvalidServiceSpecError(ValueError):
    """The specs cannot be stored; the message says which service and why."""


def validate_specs(specs: Sequence[ServiceSpec]) -> None:
    duplicates = sorted(name for name, n in Counter(s.name for s in specs).items() if n > 1)
    if duplicates:
        raise InvalidServiceSpecError(f"services listed more than once: {', '.join(duplicates)}")
    for spec in specs:
        for field, value, limit in (
            ("name", spec.name, NAME_MAX),
            ("environment", spec.environment, ENVIRONMENT_MAX),
            ("url", spec.url, URL_MAX),
        ):
            if value is None:
                continue
            if field != "url" and not value.strip():
                raise InvalidServiceSpecError(f"service {spec.name!r}: {field} is empty")
            if len(value) > limit:
                raise InvalidServiceSpecError(
                    f"service {spec.name[:40]!r}: {field} is longer than {limit} characters"
                )


def sync_services(session: Session, specs: Sequence[ServiceSpec]) -> SyncResult:
    """Make the table match `specs`, matching rows by name; unlisted services are deleted."""
    validate_specs(specs)
    wanted = {spec.name: spec for spec in specs}
    existing = {service.name: service for service in session.scalars(select(Service))}
    now = utc_now()
    created: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    for name, spec in wanted.items():
        service = existing.get(name)
        if service is None:
            session.add(
                Service(
                    name=name,
                    environment=spec.environment,
                    url=spec.url,
                    created_at=now,
                    updated_at=now,
                )
            )
            created.append(name)
        elif (service.environment, service.url) != (spec.environment, spec.url):
            service.environment = spec.environment
            service.url = spec.url
            service.updated_at = now
            updated.append(name)
        else:
            unchanged.append(name)
    removed = [name for name in existing if name not in wanted]
    for name in removed:
        session.delete(existing[name])
    session.flush()
    return SyncResult(
        created=tuple(sorted(created)),
        updated=tuple(sorted(updated)),
        unchanged=tuple(sorted(unchanged)),
        removed=tuple(sorted(removed)),
    )


def list_services(session: Session) -> list[ServiceRead]:
    """Every service, by name."""
    rows = session.scalars(select(Service).order_by(Service.name))
    return [ServiceRead.model_validate(row) for row in rows]
