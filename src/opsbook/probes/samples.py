"""From a probe attempt to samples, with blackbox-exporter names. Pure, no I/O.

Every series of a probe carries ``service``, ``probe`` and ``instance`` (what was probed, without
credentials) plus the service's configured labels:

- ``probe_success`` 1 or 0, ``probe_duration_seconds``;
- ``probe_http_status_code`` for HTTP probes (0 when no response came);
- ``probe_ssl_earliest_cert_expiry`` (Unix seconds) when the connection used TLS;
- for ``application/health+json`` answers, per component
  ``opsbook_health_check_status{component}`` (1 pass, 0.5 warn, 0 fail: the worst of its
  measurements) and, per numeric measurement,
  ``opsbook_health_check_observed_value{component, measurement}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opsbook.metrics.model import Labels, labels_from_mapping
from opsbook.probes.results import (
    HEALTH_STATUS_VALUES,
    CheckResult,
    ComponentCheck,
    HealthStatus,
)
from opsbook.probes.specs import ProbeSpec

PROBE_SUCCESS = "probe_success"
PROBE_DURATION = "probe_duration_seconds"
PROBE_HTTP_STATUS = "probe_http_status_code"
PROBE_CERT_EXPIRY = "probe_ssl_earliest_cert_expiry"
HEALTH_CHECK_STATUS = "opsbook_health_check_status"
HEALTH_CHECK_VALUE = "opsbook_health_check_observed_value"


@dataclass(slots=True)
class ProbeSeries:
    """The label sets of one probe's series, built once and reused every attempt."""

    base: dict[str, str]
    success: Labels
    duration: Labels
    http_status: Labels
    cert_expiry: Labels
    components: dict[tuple[str, str, str | None], Labels] = field(default_factory=dict)

    @classmethod
    def of(cls, spec: ProbeSpec) -> ProbeSeries:
        base = {
            **dict(spec.labels),
            "service": spec.service,
            "probe": spec.name,
            "instance": spec.instance,
        }

        def named(name: str) -> Labels:
            return labels_from_mapping({**base, "__name__": name})

        return cls(
            base=base,
            success=named(PROBE_SUCCESS),
            duration=named(PROBE_DURATION),
            http_status=named(PROBE_HTTP_STATUS),
            cert_expiry=named(PROBE_CERT_EXPIRY),
        )

    def component(self, name: str, component: str, measurement: str | None = None) -> Labels:
        """``name``'s series for a health component (and measurement, for observed values)."""
        key = (name, component, measurement)
        labels = self.components.get(key)
        if labels is None:
            extra = {"component": component}
            if measurement is not None:
                extra["measurement"] = measurement
            labels = labels_from_mapping({**self.base, **extra, "__name__": name})
            self.components[key] = labels
        return labels


def attempt_samples(
    spec: ProbeSpec, series: ProbeSeries, result: CheckResult
) -> tuple[list[Labels], list[float]]:
    """The series and values one attempt writes, all at the attempt's timestamp."""
    labels = [series.success, series.duration]
    values = [1.0 if result.success else 0.0, result.duration_s]
    if spec.kind == "http":
        labels.append(series.http_status)
        values.append(float(result.status_code or 0))
    if result.cert_expiry_unix_s is not None:
        labels.append(series.cert_expiry)
        values.append(result.cert_expiry_unix_s)
    for component, status in component_statuses(result.components).items():
        labels.append(series.component(HEALTH_CHECK_STATUS, component))
        values.append(HEALTH_STATUS_VALUES[status])
    for check in result.components:
        if check.observed_value is not None:
            labels.append(series.component(HEALTH_CHECK_VALUE, check.component, check.measurement))
            values.append(float(check.observed_value))
    return labels, values


def component_statuses(components: tuple[ComponentCheck, ...]) -> dict[str, HealthStatus]:
    """Each component's status: the worst of its measurements, in the body's order."""
    worst: dict[str, HealthStatus] = {}
    for check in components:
        current = worst.get(check.component)
        if current is None or HEALTH_STATUS_VALUES[check.status] < HEALTH_STATUS_VALUES[current]:
            worst[check.component] = check.status
    return worst
