"""load_config on real files: the schema, the located messages, interpolation, secrets."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from opsbook.config import (
    ConfigError,
    ConfigIssue,
    EmailChannel,
    OpsbookConfig,
    SlackChannel,
    load_config,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "opsbook.yaml"
EXAMPLE_ENV = {
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T1/B2/abc",
    "PAGERDUTY_ROUTING_KEY": "0123456789abcdef0123456789abcdef",
    "SMTP_PASSWORD": "mail-password",
    "STATUS_WEBHOOK_URL": "https://status.example.com/hook",
}
SECRET = "s3cr3t-XYZZY-4242"

VALID = """\
services:
  - name: api
    url: https://api.example.com
slos:
  - name: availability
    service: api
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(errors[5m]))
        total_query: sum(rate(requests[5m]))
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Messages name the file as given: run from tmp_path and give plain "opsbook.yaml".
    monkeypatch.chdir(tmp_path)


def write(text: str, name: str = "opsbook.yaml") -> str:
    Path(name).write_text(textwrap.dedent(text), encoding="utf-8")
    return name


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    path = write(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=environ or {})
    return [str(issue) for issue in info.value.issues]


def where(text: str, needle: str, occurrence: int = 0) -> str:
    """``LINE:COL`` (1-based) of ``needle`` in the dedented ``text``."""
    text = textwrap.dedent(text)
    offset = -1
    for _ in range(occurrence + 1):
        offset = text.index(needle, offset + 1)
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"{line}:{column}"


# --- valid files -----------------------------------------------------------------------------


def test_example_file_is_valid_and_fully_read() -> None:
    config = load_config(EXAMPLE, environ=EXAMPLE_ENV)

    assert config.project == "rentwise"
    assert config.storage.database_url is None  # ${OPSBOOK_DATABASE_URL:-} unset
    api, scheduler = config.services
    assert api.health_url == "https://api.rentwise.example.com/health/detailed"
    assert api.metrics_url == "https://api.rentwise.example.com/metrics"
    assert api.health is not None and api.health.timeout == timedelta(seconds=5)  # via <<: merge
    assert api.labels == {"team": "platform", "tier": "1"}
    assert scheduler.health is not None
    assert scheduler.health.interval == timedelta(minutes=1)  # explicit key beats the merge
    assert scheduler.environment == "production"
    assert config.slos[0].objective == 99.9
    assert config.slos[0].window == timedelta(days=30)
    assert config.slos[0].error_budget == pytest.approx(0.001)
    assert [c.type for c in config.notify.channels] == ["slack", "pagerduty", "email", "webhook"]
    slack = config.notify.channel("ops-slack")
    assert isinstance(slack, SlackChannel)
    assert slack.webhook_url.get_secret_value() == EXAMPLE_ENV["SLACK_WEBHOOK_URL"]
    email = config.notify.channel("ops-mail")
    assert isinstance(email, EmailChannel)
    assert email.smtp.port == 587 and email.smtp.starttls is True
    assert email.smtp.password is not None
    assert email.smtp.password.get_secret_value() == "mail-password"


def test_defaults_of_a_minimal_file() -> None:
    config = load_config(write(VALID), environ={})
    service = config.services[0]
    assert config.project == "opsbook"
    assert config.storage.data_dir == ".opsbook"
    assert (service.environment, service.health, service.metrics, service.labels) == (
        "production",
        None,
        None,
        {},
    )
    assert config.notify.channels == []


def test_empty_mapping_is_a_valid_config() -> None:
    config = load_config(write("{}\n"), environ={})
    assert config == OpsbookConfig()


def test_probe_defaults_and_relative_urls() -> None:
    config = load_config(
        write(
            """\
            services:
              - name: api
                url: https://api.example.com/v1/
                health: {url: /health}
                metrics: {url: "http://10.0.0.5:9100/metrics"}
            """
        ),
        environ={},
    )
    service = config.services[0]
    assert service.health is not None and service.metrics is not None
    assert (service.health.interval, service.health.timeout) == (
        timedelta(seconds=30),
        timedelta(seconds=5),
    )
    assert (service.metrics.interval, service.metrics.timeout) == (
        timedelta(seconds=15),
        timedelta(seconds=10),
    )
    assert service.health_url == "https://api.example.com/v1/health"
    assert service.metrics_url == "http://10.0.0.5:9100/metrics"


# --- located messages ------------------------------------------------------------------------


def test_objective_out_of_range_message_and_position() -> None:
    text = """\
    services:
      - name: api
    slos:
      - name: availability
        service: api
        objective: 999
        sli:
          events: {error_query: e, total_query: t}
    """
    assert problems(text) == [
        "opsbook.yaml:6:16: slos[0].objective: must be between 0 and 100 (got 999)"
    ]
    assert where(text, "999") == "6:16"


@pytest.mark.parametrize("objective", ["0", "100", "-1", "100.5"])
def test_objective_bounds_are_exclusive(objective: str) -> None:
    text = VALID.replace("99.9", objective)
    assert problems(text) == [
        f"opsbook.yaml:7:16: slos[0].objective: must be between 0 and 100 (got {objective})"
    ]


def test_unknown_key_suggests_the_closest() -> None:
    text = """\
    services:
      - name: api
        helth:
          url: https://api.example.com/health
    servics: []
    """
    assert problems(text) == [
        f"opsbook.yaml:{where(text, 'helth')}: services[0].helth: unknown key"
        " (did you mean 'health'?)",
        "opsbook.yaml:5:1: servics: unknown key (did you mean 'services'?)",
    ]


def test_unknown_key_without_a_close_match_lists_the_valid_ones() -> None:
    text = "storage:\n  bananas: 3\n"
    assert problems(text) == [
        "opsbook.yaml:2:3: storage.bananas: unknown key (valid keys: 'database_url', 'data_dir')"
    ]


def test_unknown_key_inside_a_channel_uses_that_channel_type() -> None:
    text = """\
    notify:
      channels:
        - type: pagerduty
          name: pd
          routing_ky: abc
    """
    assert problems(text) == [
        "opsbook.yaml:5:7: notify.channels[0].routing_ky: unknown key (did you mean 'routing_key'?)"
    ]


def test_missing_required_keys_point_at_the_parent_mapping() -> None:
    text = """\
    services:
      - environment: staging
    slos:
      - name: latency
        service: api
        objective: 99
        sli:
          events:
            error_query: e
    notify:
      channels:
        - name: nameless
    """
    assert problems(text) == [
        "opsbook.yaml:2:5: services[0]: required key 'name' is missing",
        # Reported although services[0] is broken: cross-references are checked regardless.
        "opsbook.yaml:5:14: slos[0].service: no service named 'api' in services"
        " (there are no services)",
        "opsbook.yaml:9:9: slos[0].sli.events: required key 'total_query' is missing",
        "opsbook.yaml:12:7: notify.channels[0]: required key 'type' is missing",
    ]


def test_wrong_types_are_reported_in_user_language() -> None:
    text = """\
    project: 42
    services: {name: api}
    notify:
      channels:
        - type: email
          name: mail
          to: ops@example.com
          from_address: opsbook@example.com
          smtp: {host: smtp, port: abc, starttls: maybe}
        - type: teams
          name: t
    slos:
      - name: s
        service: api
        objective: high
        window: soon
        sli: {events: {error_query: e, total_query: t}}
    """
    assert problems(text) == [
        "opsbook.yaml:1:10: project: must be a string (got 42; put it in quotes to make it text)",
        "opsbook.yaml:2:11: services: must be a list (got a mapping)",
        "opsbook.yaml:7:11: notify.channels[0].to: must be a list (got 'ops@example.com')",
        "opsbook.yaml:9:32: notify.channels[0].smtp.port: must be an integer (got 'abc')",
        "opsbook.yaml:9:47: notify.channels[0].smtp.starttls: must be true or false (got 'maybe')",
        "opsbook.yaml:10:13: notify.channels[1].type: must be one of 'slack', 'pagerduty',"
        " 'email', 'webhook' (got 'teams')",
        "opsbook.yaml:14:14: slos[0].service: no service named 'api' in services"
        " (there are no services)",
        "opsbook.yaml:15:16: slos[0].objective: must be a number (got 'high')",
        "opsbook.yaml:16:13: slos[0].window: must be a duration like 30s, 5m, 1h (got 'soon')",
    ]


def test_field_rules_name_the_value() -> None:
    text = """\
    services:
      - name: Api
        url: ftp://example.com
        labels: {app.kubernetes.io/name: x}
        health:
          url: health
          interval: 30
          timeout: 0s
      - name: worker
        metrics: {url: /metrics}
    notify:
      channels:
        - type: email
          name: m
          to: []
          from_address: nobody
          smtp: {host: smtp, port: 0}
    """
    assert problems(text) == [
        "opsbook.yaml:2:11: services[0].name: must use only lowercase letters, digits, '-' and"
        " '_' (got 'Api')",
        "opsbook.yaml:3:10: services[0].url: must be an http(s) URL like https://api.example.com"
        " (got 'ftp://example.com')",
        "opsbook.yaml:4:14: services[0].labels['app.kubernetes.io/name']: label names must be"
        " letters, digits and '_', not start with a digit or '__' (got 'app.kubernetes.io/name')",
        "opsbook.yaml:6:12: services[0].health.url: must be an http(s) URL or a path starting"
        " with '/', like /health (got 'health')",
        "opsbook.yaml:7:17: services[0].health.interval: must be a duration like 30s, 5m, 1h"
        " (got 30)",
        "opsbook.yaml:8:16: services[0].health.timeout: must be longer than 0s (got '0s')",
        "opsbook.yaml:10:20: services[1].metrics.url: is a path, so the service needs a base"
        " 'url' to resolve it (got '/metrics')",
        "opsbook.yaml:15:11: notify.channels[0].to: must have at least 1 item",
        "opsbook.yaml:16:21: notify.channels[0].from_address: must be an e-mail address like"
        " ops@example.com (got 'nobody')",
        "opsbook.yaml:17:32: notify.channels[0].smtp.port: must be at least 1 (got 0)",
    ]


def test_yaml_booleans_are_not_numbers() -> None:
    text = "notify:\n  channels:\n    - {type: email, name: m, to: [a@b], from_address: a@b,"
    text += " smtp: {host: h, port: yes}}\n"
    assert problems(text) == [
        "opsbook.yaml:3:82: notify.channels[0].smtp.port: must be a number (got true)"
    ]


def test_timeout_longer_than_interval_names_both() -> None:
    text = """\
    services:
      - name: api
        url: https://api.example.com
        health:
          url: /health
          interval: 5s
          timeout: 10s
        metrics:
          url: /metrics
          interval: 2s
    """
    assert problems(text) == [
        "opsbook.yaml:7:16: services[0].health.timeout: timeout 10s is longer than interval 5s",
        # The default timeout (10s) can only be fixed at the interval the user wrote.
        "opsbook.yaml:10:17: services[0].metrics.interval: timeout 10s (the default) is longer"
        " than interval 2s",
    ]


def test_duplicate_service_and_channel_names() -> None:
    text = """\
    services:
      - name: api
      - name: worker
      - name: api
    notify:
      channels:
        - {type: webhook, name: hook, url: "https://a.example.com"}
        - {type: webhook, name: hook, url: "https://b.example.com"}
    """
    assert problems(text) == [
        "opsbook.yaml:4:11: services[2].name: duplicate service name 'api' (first at line 2)",
        "opsbook.yaml:8:29: notify.channels[1].name: duplicate channel"
        " name 'hook' (first at line 7)",
    ]


def test_duplicate_slo_names_only_within_one_service() -> None:
    slo = "  - {{name: {name}, service: {service}, objective: 99, sli: {{events: {{error_query: e,"
    slo += " total_query: t}}}}}}\n"
    text = "services: [{name: api}, {name: web}]\nslos:\n"
    text += slo.format(name="avail", service="api")
    text += slo.format(name="avail", service="web")
    text += slo.format(name="avail", service="api")
    assert problems(text) == [
        "opsbook.yaml:5:12: slos[2].name: duplicate SLO name 'avail' (first at line 3)"
    ]


def test_slo_naming_an_unknown_service() -> None:
    text = VALID.replace("service: api", "service: apii")
    assert problems(text) == [
        f"opsbook.yaml:{where(text, 'apii')}: slos[0].service: no service named 'apii' in"
        " services (did you mean 'api'?)"
    ]


def test_duplicate_yaml_keys() -> None:
    text = """\
    services:
      - name: api
        url: https://a.example.com
        name: web
    project: one
    project: two
    """
    assert problems(text) == [
        "opsbook.yaml:4:5: services[0].name: duplicate key 'name' (first at line 2)",
        "opsbook.yaml:6:1: project: duplicate key 'project' (first at line 5)",
    ]


def test_all_errors_at_once_sorted_by_line() -> None:
    text = """\
    notify:
      channels:
        - {type: slack, name: s, webhook_url: "https://hooks.example.com", colour: red}
    slos:
      - name: x
        service: nowhere
        objective: 999
        sli: {events: {error_query: e, total_query: t}}
    services:
      - name: api
        helth: {}
    """
    lines = problems(text)
    assert [line.split(":")[1] for line in lines] == ["3", "6", "7", "11"]
    assert len(lines) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "services:\n  - name: api\n   url: x\n",
            "opsbook.yaml:3:4: YAML syntax error: expected <block end>",
        ),
        ("services: [api\n", "opsbook.yaml:2:1: YAML syntax error: expected ',' or ']'"),
        ("project: 'open\n", "opsbook.yaml:2:1: YAML syntax error: found unexpected end"),
        ("services:\n\t- name: api\n", "opsbook.yaml:2:1: YAML syntax error: found character"),
        ("a: 1\n---\nb: 2\n", "opsbook.yaml:2:1: YAML syntax error: the file must hold one"),
        ("project: !env X\n", "opsbook.yaml:1:10: project: YAML error: could not determine"),
    ],
)
def test_yaml_errors_are_located(text: str, message: str) -> None:
    [line] = problems(text)
    assert line.startswith(message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "opsbook.yaml: the file is empty"),
        ("# only a comment\n", "opsbook.yaml: the file is empty"),
        ("- api\n- web\n", "opsbook.yaml:1:1: the top level must be a mapping"),
        ("just text\n", "opsbook.yaml:1:1: the top level must be a mapping"),
    ],
)
def test_files_without_a_mapping(text: str, message: str) -> None:
    [line] = problems(text)
    assert line.startswith(message)


def test_missing_file_is_named_as_given() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("nowhere/opsbook.yaml", environ={})
    assert str(info.value) == "nowhere/opsbook.yaml: file not found"
    assert info.value.issues == [
        ConfigIssue("nowhere/opsbook.yaml", None, None, "", "file not found")
    ]


def test_undecodable_file() -> None:
    Path("opsbook.yaml").write_bytes(b"project: ok\nname: \xff\n")
    with pytest.raises(ConfigError) as info:
        load_config("opsbook.yaml", environ={})
    assert str(info.value) == "opsbook.yaml:2:1: is not UTF-8 text"


def test_extension_keys_and_anchors() -> None:
    text = """\
    x-labels: &labels {team: core}
    services:
      - name: api
        labels: *labels
      - name: web
        labels:
          <<: *labels
          tier: "2"
    """
    config = load_config(write(text), environ={})
    assert [s.labels for s in config.services] == [{"team": "core"}, {"team": "core", "tier": "2"}]


def test_recursive_alias_is_an_error() -> None:
    [line] = problems("x-a: &a [*a]\n")
    assert line == (
        "opsbook.yaml:1:6: x-a[0]: an alias refers to a value that contains it (recursive alias)"
    )


# --- environment interpolation ---------------------------------------------------------------

CHANNELS = """\
notify:
  channels:
    - type: slack
      name: ops
      webhook_url: ${SLACK_WEBHOOK_URL}
"""


def test_interpolation_from_the_environment() -> None:
    config = load_config(
        write(CHANNELS), environ={"SLACK_WEBHOOK_URL": "https://hooks.slack.com/x"}
    )
    channel = config.notify.channels[0]
    assert isinstance(channel, SlackChannel)
    assert channel.webhook_url.get_secret_value() == "https://hooks.slack.com/x"


def test_missing_variable_is_named_with_its_place() -> None:
    assert problems(CHANNELS) == [
        "opsbook.yaml:5:20: notify.channels[0].webhook_url: environment variable"
        " SLACK_WEBHOOK_URL is not set"
    ]


def test_interpolation_default_and_escape() -> None:
    text = """\
    project: ${PROJECT:-fallback}
    storage:
      data_dir: $${HOME}/${SUBDIR:-data}
      database_url: ${DB_URL:-}
    """
    config = load_config(write(text), environ={"SUBDIR": "ops"})
    assert config.project == "fallback"
    assert config.storage.data_dir == "${HOME}/ops"
    assert config.storage.database_url is None


def test_interpolated_numbers_are_parsed() -> None:
    text = """\
    notify:
      channels:
        - type: email
          name: m
          to: [ops@example.com]
          from_address: ops@example.com
          smtp: {host: smtp, port: "${SMTP_PORT:-25}", starttls: "${TLS}"}
    """
    config = load_config(write(text), environ={"TLS": "false"})
    channel = config.notify.channels[0]
    assert isinstance(channel, EmailChannel)
    assert (channel.smtp.port, channel.smtp.starttls) == (25, False)


def test_malformed_reference() -> None:
    assert problems("project: ${not valid}\n") == [
        "opsbook.yaml:1:10: project: '${' must start a reference like ${NAME} or"
        " ${NAME:-default} (write $${ for a literal '${')"
    ]


def test_interpolated_values_are_not_echoed_in_errors() -> None:
    text = """\
    services:
      - name: api
        url: ${API_URL}
        health: {url: /health, interval: "${INTERVAL}", timeout: 10s}
    """
    assert problems(text, {"API_URL": SECRET, "INTERVAL": "5s"}) == [
        "opsbook.yaml:3:10: services[0].url: must be an http(s) URL like https://api.example.com"
        " (value from ${API_URL})",
        "opsbook.yaml:4:62: services[0].health.timeout: timeout 10s is longer than interval"
        " ${INTERVAL}",
    ]


# --- secrets ---------------------------------------------------------------------------------

SECRETS = """\
storage:
  database_url: postgresql://ops:${DB_PASSWORD}@db/ops
notify:
  channels:
    - type: slack
      name: slack
      webhook_url: ${HOOK}
    - type: pagerduty
      name: pd
      routing_key: ${ROUTING_KEY}
    - type: email
      name: mail
      to: [ops@example.com]
      from_address: ops@example.com
      smtp: {host: smtp, password: "${SMTP_PASSWORD}"}
    - type: webhook
      name: hook
      url: https://hooks.example.com/${HOOK_TOKEN}
"""


def test_secrets_never_print_from_a_valid_config() -> None:
    environ = {
        "DB_PASSWORD": SECRET,
        "HOOK": f"https://hooks.slack.com/{SECRET}",
        "ROUTING_KEY": SECRET,
        "SMTP_PASSWORD": SECRET,
        "HOOK_TOKEN": SECRET,
    }
    config = load_config(write(SECRETS), environ=environ)

    for text in (repr(config), str(config), config.model_dump_json(), str(config.model_dump())):
        assert SECRET not in text
    assert config.storage.database_url is not None
    assert SECRET in config.storage.database_url.get_secret_value()  # but still usable


def test_secrets_never_print_in_errors() -> None:
    # Every secret is set to something invalid, and a literal secret has the wrong type.
    text = SECRETS.replace("${ROUTING_KEY}", "987654321987")
    text = text.replace("smtp: {host: smtp,", 'smtp: {host: smtp, port: "${HOOK_TOKEN}",')
    environ = {
        "DB_PASSWORD": SECRET,
        "HOOK": SECRET,
        "SMTP_PASSWORD": "",
        "HOOK_TOKEN": SECRET,
    }
    lines = problems(text, environ)
    assert lines == [
        "opsbook.yaml:7:20: notify.channels[0].webhook_url: must be an http(s) URL"
        " (value from ${HOOK})",
        "opsbook.yaml:10:20: notify.channels[1].routing_key: must be a string",
        "opsbook.yaml:15:32: notify.channels[2].smtp.port: must be an integer"
        " (value from ${HOOK_TOKEN})",
        "opsbook.yaml:15:59: notify.channels[2].smtp.password: must not be empty"
        " (value from ${SMTP_PASSWORD})",
    ]
    assert not any("987654321987" in line or SECRET in line for line in lines)


def test_validation_errors_from_python_hide_inputs() -> None:
    with pytest.raises(ValidationError) as info:
        OpsbookConfig.model_validate(
            {"notify": {"channels": [{"type": "slack", "name": "s", "webhook_url": SECRET}]}}
        )
    assert SECRET not in str(info.value)


def test_errors_in_merged_values_point_at_the_anchor() -> None:
    text = """\
    x-probe: &probe
      interval: soon
    services:
      - name: api
        health:
          <<: *probe
          url: https://api.example.com/health
    """
    assert problems(text) == [
        "opsbook.yaml:2:13: services[0].health.interval: must be a duration like 30s, 5m, 1h"
        " (got 'soon')"
    ]


def test_reference_docs_show_the_example_file() -> None:
    docs = (EXAMPLE.parents[1] / "docs" / "configuration.md").read_text(encoding="utf-8")
    example = EXAMPLE.read_text(encoding="utf-8")
    body = example[example.index("project:") :]
    assert f"```yaml\n{body}```" in docs
