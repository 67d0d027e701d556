"""The ``opsbook.yaml`` configuration: schema, loading and located error messages.

Usage::

    config = load_config("opsbook.yaml")  # raises ConfigError listing every problem
    for service in config.services:
        print(service.name, service.health_url)
"""

from opsbook.config.durations import (
    Duration,
    DurationError,
    PositiveDuration,
    format_duration,
    parse_duration,
)
from opsbook.config.errors import ConfigError, ConfigIssue
from opsbook.config.loader import (
    CONFIG_ENV_VAR,
    DEFAULT_CONFIG_FILE,
    default_config_path,
    load_config,
    parse_config,
)
from opsbook.config.models import (
    SLI,
    SLO,
    Channel,
    EmailChannel,
    HealthProbe,
    MetricsScrape,
    NotifyConfig,
    OpsbookConfig,
    PagerDutyChannel,
    Service,
    SlackChannel,
    SLIEvents,
    SmtpSettings,
    StorageConfig,
    WebhookChannel,
)

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_CONFIG_FILE",
    "SLI",
    "SLO",
    "Channel",
    "ConfigError",
    "ConfigIssue",
    "Duration",
    "DurationError",
    "EmailChannel",
    "HealthProbe",
    "MetricsScrape",
    "NotifyConfig",
    "OpsbookConfig",
    "PagerDutyChannel",
    "PositiveDuration",
    "SLIEvents",
    "Service",
    "SlackChannel",
    "SmtpSettings",
    "StorageConfig",
    "WebhookChannel",
    "default_config_path",
    "format_duration",
    "load_config",
    "parse_config",
    "parse_duration",
]
