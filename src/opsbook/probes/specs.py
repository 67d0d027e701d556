"""What to probe: one :class:`ProbeSpec` per probe, built from ``opsbook.yaml``. Pure, no I/O.

A spec holds a *check* (what one attempt does: an HTTP request, a TCP connect, ...) and the
schedule and thresholds the prober applies around it. Secrets (passwords in URLs) stay in the
check; everything shown to users goes through :attr:`ProbeSpec.instance`, which has none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from opsbook.config import OpsbookConfig
from opsbook.config.models import (
    HEALTH_PROBE_NAME,
    DnsProbe,
    HealthProbe,
    HttpProbe,
    PostgresProbe,
    Probe,
    RedisProbe,
    TcpProbe,
    join_url,
)
from opsbook.metrics.scrape.targets import redact_url
from opsbook.probes.conditions import Condition, parse_condition

ProbeConfig = HealthProbe | HttpProbe | TcpProbe | PostgresProbe | RedisProbe | DnsProbe

ProbeKind = Literal["http", "tcp", "postgres", "redis", "dns"]
DnsRecordType = Literal["A", "AAAA"]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class HttpCheck:
    """One HTTP(S) request on a fresh connection; success when every condition holds.

    Without conditions, success is a 2xx status (after redirects), as blackbox's ``http_2xx``.
    """

    url: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    conditions: tuple[Condition, ...] = ()
    follow_redirects: bool = True
    verify_tls: bool = True
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    kind: Literal["http"] = field(default="http", init=False)

    @property
    def target(self) -> str:
        return redact_url(self.url)


@dataclass(frozen=True, slots=True)
class TcpCheck:
    """A TCP connect (optionally with TLS); conditions may use ``[CONNECTED]``, ``[RESPONSE_TIME]``
    and, with TLS, ``[CERT_EXPIRY]``. Without conditions, success is a completed connect."""

    host: str
    port: int
    tls: bool = False
    verify_tls: bool = True
    conditions: tuple[Condition, ...] = ()

    kind: Literal["tcp"] = field(default="tcp", init=False)

    @property
    def target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class PostgresCheck:
    """Connect with ``url`` (``postgresql://user:pass@host:port/db``) and run ``SELECT 1``."""

    url: str
    query: str = "SELECT 1"

    kind: Literal["postgres"] = field(default="postgres", init=False)

    @property
    def target(self) -> str:
        return redact_url(self.url)


@dataclass(frozen=True, slots=True)
class RedisCheck:
    """Connect with ``url`` (``redis://[:password@]host:port[/db]``, ``rediss://`` for TLS),
    authenticate if the URL has a password, and expect ``PONG`` to ``PING``."""

    url: str

    kind: Literal["redis"] = field(default="redis", init=False)

    @property
    def target(self) -> str:
        return redact_url(self.url)


@dataclass(frozen=True, slots=True)
class DnsCheck:
    """Resolve ``name``: through ``server`` (``host:port``, UDP) when given, else the system
    resolver. Success when it resolves to at least one address of ``record_type`` (and, with
    ``expect``, to every address listed there)."""

    name: str
    record_type: DnsRecordType = "A"
    server: str | None = None
    expect: tuple[str, ...] = ()

    kind: Literal["dns"] = field(default="dns", init=False)

    @property
    def target(self) -> str:
        return self.name if self.server is None else f"{self.name}@{self.server}"


Check = HttpCheck | TcpCheck | PostgresCheck | RedisCheck | DnsCheck


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """One probe of one service: a check, its schedule, and its anti-flapping thresholds.

    The probe is *down* after ``failure_threshold`` failed attempts in a row and *up* again after
    ``success_threshold`` successful ones. A ``critical`` probe that is down makes its service
    down; a non-critical one only degrades it.
    """

    service: str
    name: str
    check: Check
    interval_s: float
    timeout_s: float
    failure_threshold: int = 1
    success_threshold: int = 1
    critical: bool = True
    labels: tuple[tuple[str, str], ...] = ()
    """Extra labels of the service, put on every series of the probe."""

    @property
    def kind(self) -> ProbeKind:
        return self.check.kind

    @property
    def key(self) -> tuple[str, str]:
        return (self.service, self.name)

    @property
    def instance(self) -> str:
        """What is probed, without credentials: the ``instance`` label and what users see."""
        return self.check.target


def probe_specs(config: OpsbookConfig) -> list[ProbeSpec]:
    """Every probe of the config, service by service: ``health`` first, then ``probes``."""
    specs = []
    for service in config.services:
        labels = tuple(sorted(service.labels.items()))
        if service.health is not None and service.health_url is not None:
            check = _http_check(service.health, service.health_url)
            specs.append(_spec(service.name, HEALTH_PROBE_NAME, check, service.health, labels))
        for probe in service.probes:
            specs.append(
                _spec(service.name, probe.name, _check_of(probe, service.url), probe, labels)
            )
    return specs


def _spec(
    service: str, name: str, check: Check, probe: ProbeConfig, labels: tuple[tuple[str, str], ...]
) -> ProbeSpec:
    return ProbeSpec(
        service=service,
        name=name,
        check=check,
        interval_s=probe.interval.total_seconds(),
        timeout_s=probe.timeout.total_seconds(),
        failure_threshold=probe.failure_threshold,
        success_threshold=probe.success_threshold,
        critical=probe.critical,
        labels=labels,
    )


def _conditions(texts: list[str]) -> tuple[Condition, ...]:
    # Already checked by the config schema, so parsing cannot fail here.
    return tuple(parse_condition(text) for text in texts)


def _http_check(probe: HealthProbe | HttpProbe, url: str) -> HttpCheck:
    return HttpCheck(
        url=url,
        method=probe.method,
        headers=tuple((k, v.get_secret_value()) for k, v in probe.headers.items()),
        body=None if probe.body is None else probe.body.encode(),
        conditions=_conditions(probe.conditions),
        follow_redirects=probe.follow_redirects,
        verify_tls=probe.verify_tls,
    )


def _check_of(probe: Probe, base_url: str | None) -> Check:
    if isinstance(probe, HttpProbe):
        return _http_check(probe, join_url(base_url or "", probe.url))
    if isinstance(probe, TcpProbe):
        return TcpCheck(
            host=probe.host,
            port=probe.port,
            tls=probe.tls,
            verify_tls=probe.verify_tls,
            conditions=_conditions(probe.conditions),
        )
    if isinstance(probe, PostgresProbe):
        return PostgresCheck(url=probe.url.get_secret_value(), query=probe.query)
    if isinstance(probe, RedisProbe):
        return RedisCheck(url=probe.url.get_secret_value())
    return DnsCheck(
        name=probe.host,
        record_type=probe.record_type,
        server=probe.server,
        expect=tuple(probe.expect),
    )
