"""The schema of ``opsbook.yaml``.

Every model forbids unknown keys, so a typo is an error instead of a silently ignored setting.
To add a section: write a :class:`Model` subclass and add it as a field of
:class:`OpsbookConfig` (with a default if the section is optional). Error messages, locations and
"did you mean" suggestions come for free from the loader; a rule that spans several fields raises
:class:`~opsbook.config._problems.Problem` s through ``validation_error`` so it can point at the
exact field it is about.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from opsbook.config._problems import Problem, validation_error
from opsbook.config.durations import PositiveDuration, format_duration
from opsbook.config.fields import (
    EmailAddress,
    HttpUrl,
    NonEmptyStr,
    Objective,
    Port,
    Secret,
    SecretHttpUrl,
    Slug,
    Threshold,
    UrlOrPath,
)

_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*", re.ASCII)


def _label_name(value: str) -> str:
    # Labels end up on Prometheus series, so they follow Prometheus's label-name rules.
    if not _LABEL_NAME_RE.fullmatch(value) or value.startswith("__"):
        raise PydanticCustomError(
            "label_name",
            "label names must be letters, digits and '_', not start with a digit or '__'",
        )
    return value


def _empty_as_none(value: Any) -> Any:
    # `${OPSBOOK_DATABASE_URL:-}` yields "" when the variable is unset: that means "not set".
    return None if value == "" else value


LabelName = Annotated[str, AfterValidator(_label_name)]


class Model(BaseModel):
    """Base of every configuration model: strict about keys, immutable, never echoes input."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


# --- storage ---------------------------------------------------------------------------------


class StorageConfig(Model):
    database_url: Annotated[Secret | None, BeforeValidator(_empty_as_none)] = None
    """SQLAlchemy URL of the relational store; unset means SQLite under ``data_dir``."""
    data_dir: NonEmptyStr = ".opsbook"


# --- services --------------------------------------------------------------------------------


def _duration_text(value: timedelta) -> str:
    try:
        return format_duration(value)
    except ValueError:  # sub-millisecond values built in Python, never from a file
        return str(value)


class _Scheduled(Model):
    """Something done every ``interval`` that must finish within ``timeout``."""

    interval: PositiveDuration
    timeout: PositiveDuration

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> Self:
        if self.timeout <= self.interval:
            return self
        # Point at what the user wrote: a defaulted timeout can only be fixed at the interval.
        field = "interval" if "timeout" not in self.model_fields_set else "timeout"
        problem = Problem(
            loc=(field,),
            type="timeout_exceeds_interval",
            message="timeout {timeout} is longer than interval {interval}",
            input=getattr(self, field),
            ctx={
                "timeout": _duration_text(self.timeout),
                "interval": _duration_text(self.interval),
                "timeout_is_default": "timeout" not in self.model_fields_set,
            },
        )
        raise validation_error(type(self).__name__, [problem])


class _Probe(_Scheduled):
    """Schedule and anti-flapping thresholds shared by every kind of probe."""

    interval: PositiveDuration = timedelta(seconds=30)
    timeout: PositiveDuration = timedelta(seconds=5)
    failure_threshold: Threshold = 3
    """Failed attempts in a row before the probe counts as down."""
    success_threshold: Threshold = 1
    """Successful attempts in a row before a down probe counts as up again."""
    critical: bool = True
    """A critical probe that is down makes its service down; otherwise only degraded."""


def _condition_problems(conditions: list[str]) -> list[Problem]:
    from opsbook.probes.conditions import ConditionError, parse_condition

    problems = []
    for index, text in enumerate(conditions):
        try:
            parse_condition(text)
        except ConditionError as exc:
            problems.append(
                Problem(
                    loc=("conditions", index),
                    type="invalid_condition",
                    message="invalid condition: {reason}",
                    input=text,
                    ctx={"condition": text, "reason": str(exc)},
                )
            )
    return problems


class _Conditional(Model):
    conditions: list[str] = Field(default_factory=list)
    """All must hold for an attempt to succeed, e.g. ``[STATUS] == 200``; see docs/probes.md."""

    @model_validator(mode="after")
    def _conditions_parse(self) -> Self:
        problems = _condition_problems(self.conditions)
        if problems:
            raise validation_error(type(self).__name__, problems)
        return self


class _HttpOptions(_Probe, _Conditional):
    url: UrlOrPath
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[NonEmptyStr, Secret] = Field(default_factory=dict)
    """Sent with every request; values are secrets (they often carry tokens)."""
    body: str | None = None
    follow_redirects: bool = True
    verify_tls: bool = True
    """Check the server's certificate; turn off only for self-signed certificates."""


class HealthProbe(_HttpOptions):
    """Probe of a health endpoint (``application/health+json``): the probe named ``health``."""


class HttpProbe(_HttpOptions):
    type: Literal["http"]
    name: Slug


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise PydanticCustomError("host_port", "must be host:port, like db.internal:5432")
    if host.startswith("[") != host.endswith("]"):
        raise PydanticCustomError("host_port", "must be host:port, like [::1]:5432")
    return value


HostPort = Annotated[str, AfterValidator(_host_port)]


class TcpProbe(_Probe, _Conditional):
    type: Literal["tcp"]
    name: Slug
    address: HostPort
    tls: bool = False
    verify_tls: bool = True

    @property
    def host(self) -> str:
        return self.address.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])


def _url_scheme(schemes: tuple[str, ...], example: str) -> Any:
    def check(value: SecretStr) -> SecretStr:
        scheme = urlsplit(value.get_secret_value()).scheme
        if scheme not in schemes:
            raise PydanticCustomError(
                "secret_url_scheme", "must be a URL like {example}", {"example": example}
            )
        return value

    return AfterValidator(check)


PostgresUrl = Annotated[
    Secret,
    _url_scheme(
        ("postgresql", "postgres", "postgresql+psycopg"), "postgresql://user:password@host/db"
    ),
]
RedisUrl = Annotated[Secret, _url_scheme(("redis", "rediss"), "redis://:password@host:6379/0")]


class PostgresProbe(_Probe):
    """Connect and run ``SELECT 1`` (``pg_isready`` and a query in one)."""

    type: Literal["postgres"]
    name: Slug
    url: PostgresUrl
    query: NonEmptyStr = "SELECT 1"


class RedisProbe(_Probe):
    """Connect, authenticate if the URL has a password, and expect ``PONG`` to ``PING``."""

    type: Literal["redis"]
    name: Slug
    url: RedisUrl


class DnsProbe(_Probe):
    """Resolve ``host`` through ``server`` (UDP), or the system resolver without one."""

    type: Literal["dns"]
    name: Slug
    host: NonEmptyStr
    record_type: Literal["A", "AAAA"] = "A"
    server: HostPort | None = None
    expect: list[NonEmptyStr] = Field(default_factory=list)
    """Addresses the name must resolve to (all of them)."""

    @model_validator(mode="before")
    @classmethod
    def _server_port(cls, data: Any) -> Any:
        # A resolver is usually written without its port: 1.1.1.1 means 1.1.1.1:53.
        if isinstance(data, Mapping):
            server = data.get("server")
            if isinstance(server, str) and server and not _has_port(server):
                return {**data, "server": f"{server}:53"}
        return data


def _has_port(address: str) -> bool:
    if address.startswith("["):
        return "]:" in address
    return address.count(":") == 1


Probe = Annotated[
    HttpProbe | TcpProbe | PostgresProbe | RedisProbe | DnsProbe,
    Field(discriminator="type"),
]


class MetricsScrape(_Scheduled):
    """Scrape of a Prometheus ``/metrics`` endpoint."""

    url: UrlOrPath
    interval: PositiveDuration = timedelta(seconds=15)
    timeout: PositiveDuration = timedelta(seconds=10)


def join_url(base: str, url: str) -> str:
    """Resolve a probe URL: absolute URLs stay, paths are appended to the service's base URL.

    Appended, not RFC-3986-joined: ``https://x/api`` + ``/health`` is ``https://x/api/health``.
    """
    if not url.startswith("/"):
        return url
    return base.rstrip("/") + url


def _tier_text(value: Any) -> Any:
    # `tier: 1` and `tier: critical` are both common; keep one type.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class ServiceLinks(Model):
    """Where to go from an alert or the status page. Any other name is allowed too."""

    model_config = ConfigDict(extra="allow", frozen=True, hide_input_in_errors=True)

    runbook: NonEmptyStr | None = None
    repo: NonEmptyStr | None = None
    dashboard: NonEmptyStr | None = None

    def as_dict(self) -> dict[str, str]:
        """Every link that is set, by name."""
        return {k: str(v) for k, v in self.model_dump().items() if v is not None}


HEALTH_PROBE_NAME = "health"


class Service(Model):
    name: Slug
    description: str | None = None
    owner: NonEmptyStr | None = None
    """Who answers for it: a person, an e-mail address, a handle."""
    team: NonEmptyStr | None = None
    tier: Annotated[NonEmptyStr | None, BeforeValidator(_tier_text)] = None
    """How critical it is, in your own words: ``1``, ``critical``..."""
    environment: NonEmptyStr = "production"
    public: bool = False
    """Shown on the public status page."""
    links: ServiceLinks = Field(default_factory=ServiceLinks)
    url: HttpUrl | None = None
    """Base URL; relative ``health.url``, ``metrics.url`` and probe paths are appended to it."""
    health: HealthProbe | None = None
    metrics: MetricsScrape | None = None
    probes: list[Probe] = Field(default_factory=list)
    """More probes: HTTP pages, TCP ports, its PostgreSQL and Redis, DNS names."""
    dependencies: list[Slug] = Field(default_factory=list)
    """Other services, or this service's probes (its datastores), that it needs to work."""
    labels: dict[LabelName, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _paths_need_a_base_url(self) -> Self:
        if self.url is not None:
            return self
        relative: list[tuple[tuple[str | int, ...], str]] = [
            ((section,), probe.url)
            for section, probe in (("health", self.health), ("metrics", self.metrics))
            if probe is not None
        ]
        relative += [
            (("probes", index), probe.url)
            for index, probe in enumerate(self.probes)
            if isinstance(probe, HttpProbe)
        ]
        problems = [
            Problem(
                loc=(*loc, "url"),
                type="needs_base_url",
                message="is a path, so the service needs a base 'url' to resolve it against",
                input=url,
            )
            for loc, url in relative
            if url.startswith("/")
        ]
        if problems:
            raise validation_error(type(self).__name__, problems)
        return self

    @property
    def health_url(self) -> str | None:
        """The absolute URL probed for health, or None without a health check."""
        return None if self.health is None else join_url(self.url or "", self.health.url)

    @property
    def metrics_url(self) -> str | None:
        """The absolute URL scraped for metrics, or None without metrics."""
        return None if self.metrics is None else join_url(self.url or "", self.metrics.url)

    def probe_names(self) -> list[str]:
        """Every probe's name: ``health`` for the health check, then ``probes``."""
        names = [HEALTH_PROBE_NAME] if self.health is not None else []
        return names + [probe.name for probe in self.probes]


# --- SLOs (Sloth-style) ----------------------------------------------------------------------


class SLIEvents(Model):
    """Ratio SLI: ``error_query / total_query`` over the window (PromQL)."""

    error_query: NonEmptyStr
    total_query: NonEmptyStr


class SLI(Model):
    events: SLIEvents


class SLO(Model):
    name: Slug
    service: Slug
    objective: Objective
    """Target in percent, e.g. 99.9."""
    description: str | None = None
    window: PositiveDuration = timedelta(days=30)
    sli: SLI

    @property
    def error_budget(self) -> float:
        """The allowed fraction of bad events, e.g. 0.001 for a 99.9 objective."""
        return (100.0 - self.objective) / 100.0


# --- notification channels -------------------------------------------------------------------


class SlackChannel(Model):
    type: Literal["slack"]
    name: Slug
    webhook_url: SecretHttpUrl


class PagerDutyChannel(Model):
    type: Literal["pagerduty"]
    name: Slug
    routing_key: Secret
    """Events API v2 integration (routing) key."""


class SmtpSettings(Model):
    host: NonEmptyStr
    port: Port = 587
    username: str | None = None
    password: Secret | None = None
    starttls: bool = True


class EmailChannel(Model):
    type: Literal["email"]
    name: Slug
    to: Annotated[list[EmailAddress], Field(min_length=1)]
    from_address: EmailAddress
    smtp: SmtpSettings


class WebhookChannel(Model):
    type: Literal["webhook"]
    name: Slug
    url: SecretHttpUrl
    """Secret because such URLs often carry a token in the path or query."""


Channel = Annotated[
    SlackChannel | PagerDutyChannel | EmailChannel | WebhookChannel,
    Field(discriminator="type"),
]


class NotifyConfig(Model):
    channels: list[Channel] = Field(default_factory=list)

    def channel(self, name: str) -> Channel | None:
        return next((c for c in self.channels if c.name == name), None)


# --- metrics engine --------------------------------------------------------------------------


class ScrapeLimits(Model):
    """Per-scrape limits: a scrape over one fails with its reason recorded and stores nothing."""

    body_size_bytes: Annotated[int, Field(gt=0)] = 10 * 1024 * 1024
    sample_limit: Annotated[int, Field(gt=0)] = 50_000
    label_limit: Annotated[int, Field(gt=0)] = 64
    """Most labels on one series, ``__name__`` included."""
    label_name_length_limit: Annotated[int, Field(gt=0)] = 256
    label_value_length_limit: Annotated[int, Field(gt=0)] = 4096


class ScrapeTarget(Model):
    """A static scrape target: an exporter that is not a service (node_exporter, ...)."""

    job: Slug
    url: HttpUrl
    interval: PositiveDuration | None = None
    """Defaults to ``metrics.scrape_interval``."""
    timeout: PositiveDuration | None = None
    """Defaults to ``metrics.scrape_timeout`` (at most the interval)."""
    labels: dict[LabelName, str] = Field(default_factory=dict)


class QueryLimits(Model):
    max_samples: Annotated[int, Field(gt=0)] = 50_000_000
    """Most samples one query may load at once; beyond it the query fails instead of the server."""
    timeout: PositiveDuration = timedelta(minutes=2)
    lookback_delta: PositiveDuration = timedelta(minutes=5)


class MetricsConfig(Model):
    backend: Literal["embedded", "prometheus"] = "embedded"
    prometheus_url: HttpUrl | None = None
    """Base URL of a Prometheus-compatible query API, for ``backend: prometheus``."""
    retention: PositiveDuration = timedelta(days=30)
    scrape_interval: PositiveDuration = timedelta(seconds=15)
    scrape_timeout: PositiveDuration = timedelta(seconds=10)
    limits: ScrapeLimits = Field(default_factory=ScrapeLimits)
    targets: list[ScrapeTarget] = Field(default_factory=list)
    query: QueryLimits = Field(default_factory=QueryLimits)

    @model_validator(mode="after")
    def _prometheus_needs_url(self) -> Self:
        if self.backend == "prometheus" and self.prometheus_url is None:
            problem = Problem(
                loc=("prometheus_url",),
                type="missing_prometheus_url",
                message="is required when backend is 'prometheus'",
                input=None,
            )
            raise validation_error(type(self).__name__, [problem])
        return self


# --- prober --------------------------------------------------------------------------------


class ProberConfig(Model):
    concurrency: Annotated[int, Field(ge=1, le=10_000)] = 256
    """Most probe attempts in flight at once; the rest wait for a free slot."""


# --- the file --------------------------------------------------------------------------------


class OpsbookConfig(Model):
    """The whole of ``opsbook.yaml``."""

    project: NonEmptyStr = "opsbook"
    storage: StorageConfig = Field(default_factory=StorageConfig)
    services: list[Service] = Field(default_factory=list)
    slos: list[SLO] = Field(default_factory=list)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    prober: ProberConfig = Field(default_factory=ProberConfig)

    def service(self, name: str) -> Service | None:
        return next((s for s in self.services if s.name == name), None)

    @model_validator(mode="wrap")
    @classmethod
    def _check_references(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        # Cross-references are checked on the raw input so that they are reported together
        # with every other error, not only once the rest of the file is valid.
        problems = reference_problems(data)
        try:
            config = handler(data)
        except ValidationError as exc:
            raise validation_error(cls.__name__, problems, exc) from None
        if problems:
            raise validation_error(cls.__name__, problems)
        return config


def _mappings(value: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, Mapping):
                yield index, item


def _duplicate_names(
    section: tuple[str | int, ...], items: list[tuple[int, Mapping[str, Any]]], what: str
) -> list[Problem]:
    first: dict[Any, int] = {}
    problems = []
    for index, item in items:
        name = item.get("name")
        if not isinstance(name, str):
            continue
        key = (item.get("service"), name) if what == "SLO" else name
        if key in first:
            problems.append(
                Problem(
                    loc=(*section, index, "name"),
                    type="duplicate_name",
                    message="duplicate {what} name '{name}'",
                    input=name,
                    ctx={"what": what, "name": name, "first_index": first[key]},
                )
            )
        else:
            first[key] = index
    return problems


def _probe_names(service: Mapping[str, Any]) -> list[str]:
    names = [HEALTH_PROBE_NAME] if service.get("health") is not None else []
    return names + [
        p["name"] for _, p in _mappings(service.get("probes")) if isinstance(p.get("name"), str)
    ]


def _probe_name_problems(index: int, service: Mapping[str, Any]) -> list[Problem]:
    probes = list(_mappings(service.get("probes")))
    problems = _duplicate_names(("services", index, "probes"), probes, "probe")
    if service.get("health") is None:
        return problems
    for probe_index, probe in probes:
        if probe.get("name") == HEALTH_PROBE_NAME:
            problems.append(
                Problem(
                    loc=("services", index, "probes", probe_index, "name"),
                    type="reserved_probe_name",
                    message="'health' is the name of the service's health probe; pick another",
                    input=HEALTH_PROBE_NAME,
                )
            )
    return problems


def _dependency_problems(
    index: int, service: Mapping[str, Any], services: list[str]
) -> list[Problem]:
    dependencies = service.get("dependencies")
    if not isinstance(dependencies, list):
        return []
    probes = _probe_names(service)
    problems = []
    for dep_index, name in enumerate(dependencies):
        if not isinstance(name, str):
            continue
        loc = ("services", index, "dependencies", dep_index)
        if name == service.get("name"):
            problems.append(
                Problem(
                    loc=loc,
                    type="self_dependency",
                    message="a service cannot depend on itself",
                    input=name,
                )
            )
        elif name not in services and name not in probes:
            problems.append(
                Problem(
                    loc=loc,
                    type="unknown_dependency",
                    message="no service and no probe of this service named '{name}'",
                    input=name,
                    ctx={"name": name, "known": sorted(set(services) | set(probes))},
                )
            )
    return problems


def reference_problems(data: Any) -> list[Problem]:
    """Rules across sections, on the raw (unvalidated) document: unique names, known services.

    Tolerant of any shape: whatever is malformed here is reported by the schema itself.
    """
    if not isinstance(data, Mapping):
        return []
    services = list(_mappings(data.get("services")))
    slos = list(_mappings(data.get("slos")))
    notify = data.get("notify")
    channels = list(_mappings(notify.get("channels"))) if isinstance(notify, Mapping) else []

    problems = _duplicate_names(("services",), services, "service")
    # SLO names only need to be unique per service, as in Sloth.
    problems += _duplicate_names(("slos",), slos, "SLO")
    problems += _duplicate_names(("notify", "channels"), channels, "channel")

    known = sorted({s["name"] for _, s in services if isinstance(s.get("name"), str)})
    for index, item in services:
        problems += _probe_name_problems(index, item)
        problems += _dependency_problems(index, item, known)
    for index, slo in slos:
        service = slo.get("service")
        if isinstance(service, str) and service not in known:
            problems.append(
                Problem(
                    loc=("slos", index, "service"),
                    type="unknown_service",
                    message="no service named '{name}' in services",
                    input=service,
                    ctx={"name": service, "known": known},
                )
            )
    return problems


__all__ = [
    "SLI",
    "SLO",
    "Channel",
    "DnsProbe",
    "EmailChannel",
    "HealthProbe",
    "HttpProbe",
    "MetricsConfig",
    "MetricsScrape",
    "Model",
    "NotifyConfig",
    "OpsbookConfig",
    "PagerDutyChannel",
    "PostgresProbe",
    "Probe",
    "ProberConfig",
    "QueryLimits",
    "RedisProbe",
    "SLIEvents",
    "ScrapeLimits",
    "ScrapeTarget",
    "Service",
    "ServiceLinks",
    "SlackChannel",
    "SmtpSettings",
    "StorageConfig",
    "TcpProbe",
    "WebhookChannel",
    "join_url",
    "reference_problems",
]
