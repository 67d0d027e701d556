"""Certificate expiry: our DER walker against certificates made by the openssl CLI."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

import pytest

from opsbook.probes.checks.tls import (
    CertificateError,
    der_not_after,
    parse_asn1_time,
    peer_not_after,
)
from tests.conftest import require_tool
from tests.probes.conftest import SelfSigned, make_self_signed
from tests.probes.servers import HttpServer


def der_of(cert: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.read_text())


def test_not_after_matches_openssl(self_signed: SelfSigned) -> None:
    expected = ssl.cert_time_to_seconds(self_signed.not_after())

    assert der_not_after(der_of(self_signed.cert)) == expected


def test_generalized_time_after_2049(tmp_path: Path) -> None:
    # RFC 5280: dates from 2050 on are GeneralizedTime; 10,000 days from now is past 2050.
    long_lived = make_self_signed(tmp_path, days=10_000)
    expected = ssl.cert_time_to_seconds(long_lived.not_after())

    assert der_not_after(der_of(long_lived.cert)) == expected
    assert expected > 2524608000  # 2050-01-01


def test_version_1_certificate_without_the_version_field(tmp_path: Path) -> None:
    openssl = require_tool("openssl", "openssl")
    key, csr, cert = tmp_path / "k.pem", tmp_path / "r.csr", tmp_path / "v1.pem"
    request = f"req -newkey rsa:2048 -nodes -subj /CN=v1 -keyout {key} -out {csr}"
    sign = f"x509 -req -in {csr} -signkey {key} -days 7 -out {cert}"
    for arguments in (request, sign):  # x509 -req without extensions makes a v1 certificate
        subprocess.run([openssl, *arguments.split()], check=True, capture_output=True)
    der = der_of(cert)
    assert der[4] != 0xA0  # really v1: tbsCertificate starts with the serial number
    enddate = SelfSigned(cert, key, openssl).not_after()

    assert der_not_after(der) == ssl.cert_time_to_seconds(enddate)


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x30",
        b"\x02\x01\x00",  # not a SEQUENCE
        b"\x30\x84\xff\xff\xff\xff",  # a length past the end
        b"\x30\x80\x00\x00",  # BER indefinite length
        b"\x30\x03\x30\x01\x02",  # tbsCertificate without fields
    ],
)
def test_malformed_der_is_rejected(der: bytes) -> None:
    with pytest.raises(CertificateError):
        der_not_after(der)


def test_truncated_certificate_is_rejected(self_signed: SelfSigned) -> None:
    der = der_of(self_signed.cert)

    with pytest.raises(CertificateError):
        der_not_after(der[: len(der) // 3])


@pytest.mark.parametrize(
    ("tag", "text", "expected"),
    [
        (0x17, b"270105093443Z", "Jan  5 09:34:43 2027 GMT"),
        (0x17, b"500101000000Z", "Jan  1 00:00:00 1950 GMT"),  # YY >= 50 is 19YY
        (0x17, b"491231235959Z", "Dec 31 23:59:59 2049 GMT"),
        (0x18, b"20500101000000Z", "Jan  1 00:00:00 2050 GMT"),
    ],
)
def test_asn1_times(tag: int, text: bytes, expected: str) -> None:
    assert parse_asn1_time(tag, text) == ssl.cert_time_to_seconds(expected)


@pytest.mark.parametrize(
    ("tag", "text"),
    [
        (0x17, b"2701050934Z"),  # no seconds
        (0x17, b"270105093443+0100"),  # not UTC
        (0x18, b"20271305093443Z"),  # month 13
        (0x17, b"27010509344\xffZ"),
    ],
)
def test_malformed_asn1_times(tag: int, text: bytes) -> None:
    with pytest.raises(CertificateError):
        parse_asn1_time(tag, text)


async def test_verified_and_unverified_peers_give_the_same_expiry(
    https_server: HttpServer, self_signed: SelfSigned
) -> None:
    trusting = ssl.create_default_context(cafile=str(self_signed.cert))
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    seen = []
    for context in (trusting, unverified):
        _, writer = await asyncio.open_connection(
            "127.0.0.1", https_server.port, ssl=context, server_hostname="localhost"
        )
        ssl_object = writer.get_extra_info("ssl_object")
        assert bool(ssl_object.getpeercert()) == (context is trusting)  # decoded only if verified
        seen.append(peer_not_after(ssl_object))
        writer.close()
        await writer.wait_closed()

    assert seen[0] == seen[1] == ssl.cert_time_to_seconds(self_signed.not_after())


def test_no_tls_no_expiry() -> None:
    assert peer_not_after(None) is None
