"""Certificates and CRLs as Intel delivers them: PEM chains (in quotes and PCS headers) and DER or PEM CRLs.

The quoting enclave writes its PCK chain as a C string, so a NUL may end it; anything else around the
PEM blocks is refused. Serial numbers are checked before ``cryptography`` parses a certificate, because
it only warns about a negative one (and a warning is not a verdict), and the parts it parses lazily are
read at once, so that a malformed certificate is a format error here rather than a crash later.
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from attest.certs import MAX_PATH_LENGTH, UNREADABLE
from attest.errors import EvidenceFormatError
from attest.tee.tdx import der

__all__ = ["load_crl", "pem_chain"]

_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END CERTIFICATE-----")
_PEM_CRL = b"-----BEGIN X509 CRL-----"


def pem_chain(raw: bytes, what: str) -> tuple[x509.Certificate, ...]:
    """The PEM certificates of ``raw`` in order (leaf first, as Intel sends them)."""
    text = raw.rstrip(b"\x00")
    certs: list[x509.Certificate] = []
    offset = 0
    for match in _BLOCK.finditer(text):
        if text[offset : match.start()].strip():
            raise EvidenceFormatError(f"{what}: unexpected bytes before certificate {len(certs) + 1}")
        if len(certs) == MAX_PATH_LENGTH:
            raise EvidenceFormatError(f"{what} holds more than {MAX_PATH_LENGTH} certificates")
        try:
            body = base64.b64decode(re.sub(rb"\r?\n", b"", match.group(1)), validate=True)
        except binascii.Error:
            raise EvidenceFormatError(f"{what}: certificate {len(certs) + 1} is not valid base64") from None
        certs.append(_certificate(body, f"{what}: certificate {len(certs) + 1}"))
        offset = match.end()
    if text[offset:].strip():
        raise EvidenceFormatError(f"{what}: unexpected bytes after the last PEM certificate")
    if not certs:
        raise EvidenceFormatError(f"{what} holds no PEM certificate")
    return tuple(certs)


def load_crl(raw: bytes, what: str) -> x509.CertificateRevocationList:
    """A CRL in DER or PEM, as the PCS serves it (``encoding=der`` or the default PEM)."""
    try:
        if raw.lstrip().startswith(_PEM_CRL):
            return x509.load_pem_x509_crl(raw)
        return x509.load_der_x509_crl(raw)
    except ValueError as exc:
        raise EvidenceFormatError(f"{what} is not a DER or PEM CRL: {exc}") from None


def _certificate(body: bytes, what: str) -> x509.Certificate:
    tag, contents = der.single(body, what)
    fields = der.elements(contents, what) if tag == der.SEQUENCE else []
    if not fields or fields[0][0] != der.SEQUENCE:
        raise EvidenceFormatError(f"{what} is not an X.509 certificate")
    tbs = der.elements(fields[0][1], what)
    serial = next((value for tag, value in tbs[:2] if tag == der.INTEGER), None)
    if serial is None:
        raise EvidenceFormatError(f"{what} has no serial number")
    if der.read_integer(serial, f"{what} serial number") <= 0:
        raise EvidenceFormatError(f"{what} has a serial number that is not positive (RFC 5280 requires one)")
    try:
        cert = x509.load_der_x509_certificate(body)
        # cryptography reads these lazily, and may then fail with TypeError or KeyError: read them now.
        cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), cert.extensions, cert.public_key()
    except (*UNREADABLE, TypeError, KeyError, UnsupportedAlgorithm) as exc:
        raise EvidenceFormatError(f"{what} is not a valid X.509 certificate: {exc}") from None
    return cert
