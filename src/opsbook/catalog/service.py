"""Queries and state changes of the catalog. Callers own the transaction (these only flush)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from opsbook.catalog.models import (
    ENVIRONMENT_MAX,
    NAME_MAX,
    OWNER_MAX,
    TEAM_MAX,
    TIER_MAX,
    URL_MAX,
    Service,
    ServiceRead,
)
from opsbook.store.base import utc_now

if TYPE_CHECKING:  # the catalog does not need the config package at run time
    from opsbook.config import OpsbookConfig


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A service as configured: what `sync_services` makes the table match.

    `links` (name, URL) pairs and `dependencies` (service names) are tuples so that specs stay
    hashable; the table stores them as a JSON object and a JSON list, in the order given.
    """

    name: str
    environment: str
    url: str | None = None
    description: str | None = None
    owner: str | None = None
    team: str | None = None
    tier: str | None = None
    public: bool = False
    links: tuple[tuple[str, str], ...] = ()
    dependencies: tuple[str, ...] = ()


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


def service_specs(config: OpsbookConfig) -> list[ServiceSpec]:
    """The services of opsbook.yaml as specs for `sync_services`, in the file's order."""
    return [
        ServiceSpec(
            name=service.name,
            environment=service.environment,
            url=None if service.url is None else str(service.url),
            description=service.description,
            owner=service.owner,
            team=service.team,
            tier=service.tier,
            public=service.public,
            links=tuple(service.links.as_dict().items()),
            dependencies=tuple(service.dependencies),
        )
        for service in config.services
    ]


class InvalidServiceSpecError(ValueError):
    """The specs cannot be stored; the message says which service and why."""


def validate_specs(specs: Sequence[ServiceSpec]) -> None:
    duplicates = sorted(name for name, n in Counter(s.name for s in specs).items() if n > 1)
    if duplicates:
        raise InvalidServiceSpecError(f"services listed more than once: {', '.join(duplicates)}")
    for spec in specs:
        _validate_lengths(spec)
        _validate_collections(spec)


# Only the required fields must be non-blank; the optional ones are only bounded.
_REQUIRED = ("name", "environment")


def _validate_lengths(spec: ServiceSpec) -> None:
    for field, value, limit in (
        ("name", spec.name, NAME_MAX),
        ("environment", spec.environment, ENVIRONMENT_MAX),
        ("url", spec.url, URL_MAX),
        ("owner", spec.owner, OWNER_MAX),
        ("team", spec.team, TEAM_MAX),
        ("tier", spec.tier, TIER_MAX),
    ):
        if value is None:
            continue
        if field in _REQUIRED and not value.strip():
            raise InvalidServiceSpecError(f"service {spec.name!r}: {field} is empty")
        if len(value) > limit:
            raise InvalidServiceSpecError(
                f"service {spec.name[:40]!r}: {field} is longer than {limit} characters"
            )


def _validate_collections(spec: ServiceSpec) -> None:
    # Stored as a JSON object, a repeated link name would silently keep only the last URL.
    for field, names in (
        ("link", [name for name, _ in spec.links]),
        ("dependency", list(spec.dependencies)),
    ):
        repeated = sorted(name for name, n in Counter(names).items() if n > 1)
        if repeated:
            raise InvalidServiceSpecError(
                f"service {spec.name[:40]!r}: {field} listed more than once: {', '.join(repeated)}"
            )


def _column_values(spec: ServiceSpec) -> dict[str, Any]:
    """The spec as the row's column values (everything but the name and the timestamps)."""
    return {
        "environment": spec.environment,
        "url": spec.url,
        "description": spec.description,
        "owner": spec.owner,
        "team": spec.team,
        "tier": spec.tier,
        "public": spec.public,
        "links": dict(spec.links),
        "dependencies": list(spec.dependencies),
    }


_JSON_COLUMNS = ("links", "dependencies")


def _ordered(values: dict[str, Any]) -> dict[str, Any]:
    # Dict equality ignores order; compare links as pairs so a reordering is stored too.
    return {k: list(v.items()) if isinstance(v, dict) else v for k, v in values.items()}


def _stored_values(service: Service, values: dict[str, Any]) -> dict[str, Any]:
    return _ordered({column: getattr(service, column) for column in values})


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
        values = _column_values(spec)
        if service is None:
            session.add(Service(name=name, **values, created_at=now, updated_at=now))
            created.append(name)
        elif _stored_values(service, values) != _ordered(values):
            for column, value in values.items():
                setattr(service, column, value)
            for column in _JSON_COLUMNS:
                # JSON values are compared with ==, which ignores a dict's order: force the write.
                flag_modified(service, column)
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
