"""NVIDIA's pinned roots, the certificate chains that come with GPU evidence, and their path checks.

The chain the driver returns (PEM, leaf first, up to "NVIDIA Device Identity CA") is untrusted input:
only the roots shipped in ``roots/`` (copied from NVIDIA nvtrust's verifier, BSD-3-Clause) are trusted,
compared byte for byte by ``attest.certs.verify_chain``.
A chain that stops short of the leaf, lacks an intermediate or holds only the root cannot reach one.

Whether a path exists and whether its certificates are valid at the appraisal time are different
findings (not authentic; not fresh), so a path that fails only on dates is rebuilt at a time inside
every certificate's validity: a forged chain is then still reported as forged, an old genuine one as
stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from importlib import resources

from cryptography import x509

from attest.certs import MAX_PATH_LENGTH, UNREADABLE, check_valid_at, verify_chain
from attest.errors import CertificateError, EvidenceFormatError

__all__ = ["MAX_CHAIN_BYTES", "check_readable", "device_root", "load_pem_chain", "rim_root", "verify_path"]

MAX_CHAIN_BYTES = 64 << 10
"""Five device certificates are under 5 KiB of PEM; anything past 64 KiB is not a GPU chain."""


@cache
def device_root() -> x509.Certificate:
    """NVIDIA Device Identity CA: the root of every GPU attestation key (nvtrust ``verifier_device_root.pem``)."""
    return _packaged("verifier_device_root.pem")


@cache
def rim_root() -> x509.Certificate:
    """NVIDIA CoRIM signing Root CA: the root of the reference manifest signers (``verifier_RIM_root.pem``)."""
    return _packaged("verifier_RIM_root.pem")


def load_pem_chain(data: bytes, what: str) -> tuple[x509.Certificate, ...]:
    """The certificates of a PEM concatenation, in order; EvidenceFormatError if there are none or too many."""
    if len(data) > MAX_CHAIN_BYTES:
        raise EvidenceFormatError(f"the {what} is {len(data)} bytes, more than {MAX_CHAIN_BYTES}")
    try:
        certs = tuple(x509.load_pem_x509_certificates(data))
    except UNREADABLE as exc:
        raise EvidenceFormatError(f"the {what} is not a PEM certificate list: {exc}") from None
    if len(certs) > MAX_PATH_LENGTH:
        raise EvidenceFormatError(f"the {what} holds {len(certs)} certificates, more than {MAX_PATH_LENGTH}")
    for position, cert in enumerate(certs, 1):
        check_readable(cert, f"certificate {position} of the {what}")
    return certs


def check_readable(cert: x509.Certificate, what: str) -> None:
    """EvidenceFormatError if the names or extensions of ``cert`` cannot be decoded.

    ``cryptography`` decodes them only when first asked, and then raises whatever its decoder hit
    (ValueError, TypeError, KeyError, UnicodeError); asking here turns that into a format error
    before any check relies on them.
    """
    try:
        cert.subject.rfc4514_string()
        cert.issuer.rfc4514_string()
        len(cert.extensions)
    except (ValueError, TypeError, KeyError, UnicodeError) as exc:
        raise EvidenceFormatError(f"{what} is malformed: {exc}") from None


def verify_path(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    at: datetime,
    *,
    require_signing_usage: bool,
) -> tuple[tuple[x509.Certificate, ...], tuple[str, ...]]:
    """The path leaf → root and the reasons its certificates are not valid at ``at`` (empty: all are).

    CertificateError when no path exists at any time at which all the certificates are valid.
    """
    try:
        return verify_chain(leaf, intermediates, roots, at, require_signing_usage=require_signing_usage), ()
    except CertificateError as exc:
        failure = exc
    everyone = (leaf, *intermediates, *roots)
    start = max(c.not_valid_before_utc for c in everyone)
    end = min(c.not_valid_after_utc for c in everyone)
    if start > end or start <= at <= end:
        raise failure  # the dates are not what is wrong, or no single time could fix them
    try:
        path = verify_chain(
            leaf, intermediates, roots, min(max(at, start), end), require_signing_usage=require_signing_usage
        )
    except CertificateError:
        raise failure from None
    if not (stale := tuple(_stale(path, at))):
        raise failure
    return path, stale


def _stale(path: Sequence[x509.Certificate], at: datetime) -> list[str]:
    reasons = []
    for cert in path:
        try:
            check_valid_at(cert, at)
        except CertificateError as exc:
            reasons.append(exc.reason)
    return reasons


def _packaged(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(resources.files(__package__).joinpath(f"roots/{name}").read_bytes())
