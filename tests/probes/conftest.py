"""Fixtures of the check tests: loopback servers and a self-signed certificate."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.probes.servers import (
    DnsServer,
    HttpServer,
    RespServer,
    SilentServer,
    server_tls_context,
)


@dataclass(frozen=True)
class SelfSigned:
    cert: Path
    key: Path
    openssl: str

    def not_after(self) -> str:
        """``openssl x509 -enddate``: ``notAfter=Jan  5 09:34:43 2027 GMT`` -> the date."""
        out = subprocess.run(
            [self.openssl, "x509", "-enddate", "-noout", "-in", str(self.cert)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return out.strip().removeprefix("notAfter=")


def make_self_signed(directory: Path, days: int = 30, name: str = "localhost") -> SelfSigned:
    openssl = require_tool("openssl", "openssl")
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    arguments = f"req -x509 -newkey rsa:2048 -nodes -days {days} -subj /CN=localhost".split()
    arguments += ["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    arguments += ["-keyout", str(key), "-out", str(cert)]
    subprocess.run([openssl, *arguments], check=True, capture_output=True)
    return SelfSigned(cert, key, openssl)


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> SelfSigned:
    """A 30-day self-signed certificate for localhost and 127.0.0.1."""
    return make_self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    server = HttpServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def https_server(self_signed: SelfSigned) -> Iterator[HttpServer]:
    server = HttpServer(server_tls_context(str(self_signed.cert), str(self_signed.key)))
    server.start()
    yield server
    server.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def resp_server() -> Iterator[RespServer]:
    server = RespServer(password="hunter2-secret")
    server.start()
    yield server
    server.close()


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer()
    yield server
    server.close()
