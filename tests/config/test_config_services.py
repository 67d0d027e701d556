"""The service catalog and its probes in ``opsbook.yaml``: what loads, and what a mistake says."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from opsbook.config import ConfigError, OpsbookConfig, load_config
from opsbook.probes.specs import (
    DnsCheck,
    HttpCheck,
    PostgresCheck,
    RedisCheck,
    TcpCheck,
    probe_specs,
)

CATALOG = """\
services:
  - name: api
    description: Rent optimizer API
    owner: alice@example.com
    team: platform
    tier: 1
    public: true
    links:
      runbook: https://wiki.example.com/api
      status: https://status.example.com
    url: https://api.example.com/v1
    health:
      url: /health/detailed
      failure_threshold: 2
      headers: {Authorization: "Bearer ${HEALTH_TOKEN}"}
      conditions: ["[STATUS] == 200"]
    probes:
      - {name: db, type: postgres, url: "postgresql://app:${DB_PASSWORD}@db.internal/app"}
      - {name: cache, type: redis, url: "redis://:pw@cache.internal:6379/2", critical: false}
      - {name: smtp, type: tcp, address: "[2001:db8::1]:587", tls: true}
      - {name: dns, type: dns, host: api.example.com, server: 1.1.1.1, expect: [203.0.113.7]}
      - {name: home, type: http, url: /, method: HEAD, success_threshold: 2}
    dependencies: [db, cache, auth]
  - name: auth
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def load(text: str, environ: dict[str, str] | None = None) -> OpsbookConfig:
    Path("opsbook.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return load_config("opsbook.yaml", environ=environ or {})


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text, {"HEALTH_TOKEN": "t", "DB_PASSWORD": "p"})
    return [str(issue) for issue in info.value.issues]


def test_the_catalog_and_every_kind_of_probe_load() -> None:
    config = load(CATALOG, {"HEALTH_TOKEN": "tok", "DB_PASSWORD": "s3cret"})
    api = config.services[0]
    assert (api.owner, api.team, api.tier, api.public) == (
        "alice@example.com",
        "platform",
        "1",
        True,
    )
    assert api.links.as_dict() == {
        "runbook": "https://wiki.example.com/api",
        "status": "https://status.example.com",
    }
    assert api.probe_names() == ["health", "db", "cache", "smtp", "dns", "home"]

    specs = {spec.name: spec for spec in probe_specs(config) if spec.service == "api"}
    health = specs["health"]
    assert isinstance(health.check, HttpCheck)
    assert health.check.url == "https://api.example.com/v1/health/detailed"
    assert health.check.headers == (("Authorization", "Bearer tok"),)
    assert (health.interval_s, health.timeout_s, health.failure_threshold) == (30.0, 5.0, 2)
    db = specs["db"].check
    assert isinstance(db, PostgresCheck) and db.url == "postgresql://app:s3cret@db.internal/app"
    assert specs["db"].instance == "postgresql://db.internal/app"  # shown without credentials
    assert isinstance(specs["cache"].check, RedisCheck) and not specs["cache"].critical
    smtp = specs["smtp"].check
    assert isinstance(smtp, TcpCheck) and (smtp.host, smtp.port, smtp.tls) == (
        "2001:db8::1",
        587,
        True,
    )
    assert specs["smtp"].instance == "[2001:db8::1]:587"
    dns = specs["dns"].check
    assert (
        isinstance(dns, DnsCheck) and dns.server == "1.1.1.1:53" and dns.expect == ("203.0.113.7",)
    )
    home = specs["home"]
    assert isinstance(home.check, HttpCheck) and home.check.method == "HEAD"
    assert home.check.url == "https://api.example.com/v1/" and home.success_threshold == 2


def test_mistakes_in_probes_point_at_the_value() -> None:
    text = """\
    services:
      - name: api
        health: {url: "https://api.example.com/health", failure_threshold: 0}
        probes:
          - {name: db, type: postgres, url: "mysql://db"}
          - {name: db, type: tcp, address: "db.internal"}
          - {name: q, type: dns, host: x, record_type: MX}
          - {name: health, type: redis, url: "redis://r"}
          - {name: w, type: ftp}
    """
    assert problems(text) == [
        "opsbook.yaml:3:72: services[0].health.failure_threshold: must be at least 1 (got 0)",
        "opsbook.yaml:5:41: services[0].probes[0].url: must be a URL like"
        " postgresql://user:password@host/db",
        "opsbook.yaml:6:16: services[0].probes[1].name: duplicate probe name 'db'"
        " (first at line 5)",
        "opsbook.yaml:6:40: services[0].probes[1].address: must be host:port, like"
        " db.internal:5432 (got 'db.internal')",
        "opsbook.yaml:7:52: services[0].probes[2].record_type: must be one of 'A', 'AAAA'"
        " (got 'MX')",
        "opsbook.yaml:8:16: services[0].probes[3].name: 'health' is the name of the service's"
        " health probe; pick another",
        "opsbook.yaml:9:25: services[0].probes[4].type: must be one of 'http', 'tcp', 'postgres',"
        " 'redis', 'dns' (got 'ftp')",
    ]


def test_a_probe_secret_is_never_echoed() -> None:
    text = """\
    services:
      - name: api
        probes:
          - {name: db, type: postgres, url: "mysql://root:hunter2@db"}
    """
    (message,) = problems(text)
    assert "hunter2" not in message and "postgresql://" in message


def test_dependencies_must_name_a_service_or_a_probe_of_this_service() -> None:
    text = """\
    services:
      - name: api
        probes: [{name: db, type: tcp, address: "db:5432"}]
        dependencies: [db, auth, dbb, api]
      - name: auth
    """
    assert problems(text) == [
        "opsbook.yaml:4:30: services[0].dependencies[2]: no service and no probe of this service"
        " named 'dbb' (did you mean 'db'?)",
        "opsbook.yaml:4:35: services[0].dependencies[3]: a service cannot depend on itself",
    ]


def test_an_http_probe_path_needs_the_service_url() -> None:
    text = """\
    services:
      - name: api
        probes: [{name: home, type: http, url: /}]
    """
    (message,) = problems(text)
    assert "services[0].probes[0].url: is a path, so the service needs a base 'url'" in message


def test_an_invalid_condition_in_a_tcp_probe_is_located() -> None:
    text = """\
    services:
      - name: api
        probes:
          - name: port
            type: tcp
            address: "api:443"
            conditions: ["[CONNECTED] = true"]
    """
    (message,) = problems(text)
    assert message.startswith("opsbook.yaml:7:22: services[0].probes[0].conditions[0]: invalid")
