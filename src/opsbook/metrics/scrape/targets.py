"""Scrape targets: what ``opsbook.yaml`` asks to scrape, and how often. Pure, no I/O.

A target's labels follow Prometheus: ``job`` and ``instance`` (``host:port`` of the URL) plus
the labels configured for the service or target. A configured ``job`` or ``instance`` label
wins over the default, as a static-config label does in Prometheus.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from opsbook.config import OpsbookConfig
from opsbook.config.models import MetricsConfig, MetricsScrape
from opsbook.metrics.model import Labels, labels_from_mapping

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Target:
    """One endpoint scraped on its own schedule.

    ``labels`` holds the configured extra labels; ``job`` and ``instance`` are kept out of it
    (see :func:`targets_from_config`), :meth:`label_set` puts all of them together.
    """

    job: str
    instance: str
    url: str
    interval: timedelta
    timeout: timedelta
    # A dict is not hashable; leaving it out of the hash keeps targets usable as keys
    # (equal targets still compare their labels).
    labels: dict[str, str] = field(default_factory=dict, hash=False)

    def label_set(self) -> Labels:
        """The labels every sample of this target gets: configured ones, ``job``, ``instance``."""
        return labels_from_mapping({**self.labels, "job": self.job, "instance": self.instance})

    @property
    def safe_url(self) -> str:
        """The URL without user:password, for logs, errors and the targets API."""
        return redact_url(self.url)


def instance_of(url: str) -> str:
    """``host:port`` of ``url``, with the scheme's default port when the URL has none."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address keeps its brackets, as in a URL
        host = f"[{host}]"
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    return f"{host}:{port}" if port is not None else host


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` removed."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=host))


def redact_text(text: str, url: str) -> str:
    """``text`` with the userinfo of ``url`` removed wherever it appears (error messages)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return text
    userinfo = parts.netloc.rsplit("@", 1)[0]
    text = text.replace(userinfo + "@", "")
    return text.replace(parts.password, "***") if parts.password else text


def make_target(
    job: str,
    url: str,
    interval: timedelta,
    timeout: timedelta,
    labels: dict[str, str] | None = None,
) -> Target:
    """A target with Prometheus's defaults: ``instance`` from the URL, timeout capped at the
    interval (a scrape must end before the next one starts)."""
    extra = dict(labels or {})
    job = extra.pop("job", job)
    instance = extra.pop("instance", None) or instance_of(url)
    return Target(
        job=job,
        instance=instance,
        url=url,
        interval=interval,
        timeout=min(timeout, interval),
        labels=extra,
    )


def targets_from_config(config: OpsbookConfig) -> list[Target]:
    """Every scrape target of the config: services with ``metrics:``, then ``metrics.targets``."""
    metrics = config.metrics
    targets = []
    for service in config.services:
        if service.metrics is None or service.metrics_url is None:
            continue
        interval, timeout = _service_schedule(service.metrics, metrics)
        targets.append(
            make_target(service.name, service.metrics_url, interval, timeout, service.labels)
        )
    for static in metrics.targets:
        targets.append(
            make_target(
                static.job,
                static.url,
                static.interval or metrics.scrape_interval,
                static.timeout or metrics.scrape_timeout,
                static.labels,
            )
        )
    return targets


def _service_schedule(scrape: MetricsScrape, metrics: MetricsConfig) -> tuple[timedelta, timedelta]:
    # What the service leaves out comes from metrics.scrape_interval / scrape_timeout, the
    # way Prometheus's global scrape settings fill in a job's.
    interval = scrape.interval if "interval" in scrape.model_fields_set else metrics.scrape_interval
    timeout = scrape.timeout if "timeout" in scrape.model_fields_set else metrics.scrape_timeout
    return interval, timeout


def scrape_offset_s(target: Target, now_ms: int) -> float:
    """Seconds from ``now_ms`` to this target's first scrape (see :func:`phase_offset_s`)."""
    return phase_offset_s(target.url, target.interval.total_seconds(), now_ms)


def phase_offset_s(identity: str, interval_s: float, now_ms: int) -> float:
    """Seconds from ``now_ms`` to the next moment at the fixed phase of ``identity``.

    Each scrape target or probe runs at a fixed phase within its interval, derived from a hash
    of its identity: they spread over the interval instead of all firing at once, and a restart
    keeps the phase (so the gap between samples stays one interval).
    """
    interval_ms = max(1, round(interval_s * 1000))
    digest = hashlib.sha256(identity.encode()).digest()
    phase_ms = int.from_bytes(digest[:8], "big") % interval_ms
    return ((phase_ms - now_ms) % interval_ms) / 1000
