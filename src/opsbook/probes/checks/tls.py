"""Certificate expiry of a TLS peer: ``notAfter`` in Unix seconds.

With verification on, :meth:`ssl.SSLObject.getpeercert` decodes the certificate for us. With
verification off it returns ``{}`` (the ssl module only decodes verified certificates), so we read
the DER bytes ourselves: a small ASN.1 DER walker down ``Certificate -> tbsCertificate ->
validity -> notAfter``. ``cryptography`` would do it, but is too heavy a dependency for one field.
"""

from __future__ import annotations

import calendar
import functools
import ssl


class CertificateError(ValueError):
    """The DER bytes are not a certificate we can read ``notAfter`` from."""


_SEQUENCE = 0x30
_INTEGER = 0x02
_EXPLICIT_VERSION = 0xA0  # [0] EXPLICIT Version, absent in v1 certificates
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18


@functools.cache
def client_context(verify: bool, alpn: str | None = None) -> ssl.SSLContext:
    """A shared client context per mode: building one loads the CA store (milliseconds).

    ``verify=False`` accepts any certificate for any name (self-signed internal endpoints).
    """
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if alpn is not None:
        context.set_alpn_protocols([alpn])
    return context


def peer_not_after(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> float | None:
    """``notAfter`` of the peer's certificate, or None without TLS or a certificate."""
    if ssl_object is None:
        return None
    decoded = ssl_object.getpeercert()
    if decoded:
        not_after = decoded.get("notAfter")
        if isinstance(not_after, str):
            return float(ssl.cert_time_to_seconds(not_after))
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    try:
        return der_not_after(der)
    except CertificateError:
        return None


def der_not_after(der: bytes) -> float:
    """``notAfter`` of a DER-encoded X.509 certificate, in Unix seconds (RFC 5280 4.1)."""
    _, cert_start, cert_end = _read_tlv(der, 0, _SEQUENCE, "Certificate")
    _, tbs_start, tbs_end = _read_tlv(der, cert_start, _SEQUENCE, "tbsCertificate", cert_end)
    position = tbs_start
    if position < tbs_end and der[position] == _EXPLICIT_VERSION:
        position = _read_tlv(der, position, _EXPLICIT_VERSION, "version", tbs_end)[2]
    position = _read_tlv(der, position, _INTEGER, "serialNumber", tbs_end)[2]
    position = _read_tlv(der, position, _SEQUENCE, "signature", tbs_end)[2]
    position = _read_tlv(der, position, _SEQUENCE, "issuer", tbs_end)[2]
    _, validity_start, validity_end = _read_tlv(der, position, _SEQUENCE, "validity", tbs_end)
    not_before_end = _read_time(der, validity_start, validity_end)[2]
    tag, start, end = _read_time(der, not_before_end, validity_end)
    return parse_asn1_time(tag, der[start:end])


def _read_time(der: bytes, position: int, limit: int) -> tuple[int, int, int]:
    if position >= limit or der[position] not in (_UTC_TIME, _GENERALIZED_TIME):
        raise CertificateError("validity does not hold a UTCTime or GeneralizedTime")
    return _read_tlv(der, position, der[position], "time", limit)


def _read_tlv(
    der: bytes, position: int, expected_tag: int, what: str, limit: int | None = None
) -> tuple[int, int, int]:
    """The (tag, content start, content end) of the element at ``position``."""
    end_of_data = len(der) if limit is None else limit
    if position + 2 > end_of_data:
        raise CertificateError(f"truncated before {what}")
    tag = der[position]
    if tag != expected_tag:
        raise CertificateError(f"expected {what} (tag {expected_tag:#04x}), found {tag:#04x}")
    first = der[position + 1]
    position += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        # 0x80 is BER's indefinite length, not allowed in DER; 4 bytes covers any certificate.
        if count == 0 or count > 4 or position + count > end_of_data:
            raise CertificateError(f"bad length of {what}")
        length = int.from_bytes(der[position : position + count], "big")
        position += count
    if position + length > end_of_data:
        raise CertificateError(f"{what} runs past its container")
    return tag, position, position + length


def parse_asn1_time(tag: int, raw: bytes) -> float:
    """UTCTime ``YYMMDDHHMMSSZ`` or GeneralizedTime ``YYYYMMDDHHMMSSZ`` -> Unix seconds.

    DER requires the ``Z`` and the seconds (RFC 5280 4.1.2.5), so other forms are rejected.
    """
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise CertificateError("the time is not ASCII") from None
    digits = 12 if tag == _UTC_TIME else 14
    if len(text) != digits + 1 or not text.endswith("Z") or not text[:digits].isdigit():
        raise CertificateError(f"malformed certificate time {text!r}")
    if tag == _UTC_TIME:
        two_digit = int(text[0:2])
        # RFC 5280: YY >= 50 is 19YY, else 20YY.
        year = 1900 + two_digit if two_digit >= 50 else 2000 + two_digit
        rest = text[2:12]
    else:
        year = int(text[0:4])
        rest = text[4:14]
    month, day, hour, minute, second = (int(rest[i : i + 2]) for i in range(0, 10, 2))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        raise CertificateError(f"malformed certificate time {text!r}")
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))
