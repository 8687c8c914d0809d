"""Intel's certificate chains and CRLs, judged so that "not authentic" and "not fresh" stay apart.

A chain that verifies except for a date is authentic but stale, and PCS collateral is often exactly
that (a TCB-signing certificate that expired before the TCB info it signs was issued). So the path is
built at an instant at which every certificate is valid, which proves the signatures, CA constraints
and the pinned root, and the dates are then checked separately at the time given for that collateral.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from importlib import resources

from cryptography import x509
from cryptography.x509.oid import NameOID

from attest.certs import check_valid_at, describe, verify_chain
from attest.errors import CertificateError, SignatureError

__all__ = [
    "check_crl_dates",
    "check_crl_issuer",
    "check_dates",
    "check_not_revoked",
    "check_subject",
    "check_window",
    "chain_path",
    "common_name",
    "intel_sgx_root",
]


def intel_sgx_root() -> x509.Certificate:
    """The Intel SGX Root CA shipped with modelgate, which every TDX chain must end at."""
    pem = resources.files("attest.tee.tdx").joinpath("roots", "intel_sgx_root_ca.pem").read_bytes()
    return x509.load_pem_x509_certificate(pem)


def chain_path(chain: Sequence[x509.Certificate], roots: Sequence[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    """The path from ``chain[0]`` to one of ``roots``, dates aside; CertificateError when there is none."""
    certificates = (*chain, *roots)
    instant = max(c.not_valid_before_utc for c in certificates)
    expired = min(certificates, key=lambda c: c.not_valid_after_utc)
    if expired.not_valid_after_utc < instant:
        raise CertificateError(
            f"no time exists at which the chain is valid: '{describe(expired)}' expired at "
            f"{expired.not_valid_after_utc.isoformat()}, before another of its certificates became valid "
            f"({instant.isoformat()})"
        )
    return verify_chain(chain[0], chain[1:], roots, instant)


def check_dates(path: Sequence[x509.Certificate], at: datetime) -> None:
    """CertificateError naming the first certificate of ``path`` that is not valid at ``at``."""
    for cert in path:
        check_valid_at(cert, at)


def common_name(cert: x509.Certificate) -> str | None:
    """The subject's one common name (None when it has none or several)."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if len(names) == 1 else None


def check_subject(cert: x509.Certificate, names: Sequence[str], role: str) -> None:
    """CertificateError unless the certificate's common name is one of ``names`` (Intel's fixed roles)."""
    if common_name(cert) not in names:
        raise CertificateError(f"'{describe(cert)}' is not {role} (its common name must be {' or '.join(names)})")


def check_crl_issuer(crl: x509.CertificateRevocationList, issuer: x509.Certificate, what: str) -> None:
    """CertificateError or SignatureError unless ``issuer`` issued and signed the CRL."""
    if crl.issuer != issuer.subject:
        raise CertificateError(
            f"{what} is issued by '{crl.issuer.rfc4514_string()}', not by '{describe(issuer)}', whose CRL it must be"
        )
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.crl_sign:
        raise CertificateError(f"'{describe(issuer)}' may not sign CRLs (its keyUsage lacks cRLSign)")
    if not crl.is_signature_valid(issuer.public_key()):
        raise SignatureError(f"{what}'s signature does not verify with the key of '{describe(issuer)}'")


def check_crl_dates(crl: x509.CertificateRevocationList, at: datetime, what: str) -> None:
    """CertificateError unless ``at`` lies between the CRL's thisUpdate and nextUpdate."""
    if crl.next_update_utc is None:
        raise CertificateError(f"{what} has no nextUpdate: nobody can tell when it went stale")
    check_window(crl.last_update_utc, crl.next_update_utc, at, what)


def check_not_revoked(crl: x509.CertificateRevocationList, cert: x509.Certificate, what: str) -> None:
    """CertificateError when ``cert``'s serial number is on the CRL (the CRL's issuer must be checked first)."""
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is not None:
        raise CertificateError(
            f"'{describe(cert)}' (serial {cert.serial_number:x}) is revoked by {what} "
            f"since {entry.revocation_date_utc.isoformat()}"
        )


def check_window(issued: datetime, next_update: datetime, at: datetime, what: str) -> None:
    """CertificateError unless ``at`` lies between a document's issue date and its next update."""
    if at < issued:
        raise CertificateError(
            f"{what} was issued at {issued.isoformat()}, after the verification time {at.isoformat()}"
        )
    if at > next_update:
        raise CertificateError(
            f"{what} is stale: its next update was due at {next_update.isoformat()} "
            f"(verification time {at.isoformat()})"
        )
