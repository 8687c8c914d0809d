"""X.509 path validation for certificate-signed bundles, written out because it must be exact.

The installed ``cryptography`` (pinned by mitmproxy) cannot relax its built-in policy for private code
signing CAs, whose leaves often carry ``CA:TRUE`` (the OpenSSF test vectors do). So the path is built
here from the one primitive it does offer, ``verify_directly_issued_by``, and every rule is checked
explicitly: each certificate valid at the verification time, issuers that are CAs allowed to sign
certificates, path lengths within bounds, no critical extension we do not understand, and a path that
ends at a configured root, compared byte for byte (a self-signed certificate in the bundle is not a root).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from attest.errors import AttestError, CertificateError, IdentityError

__all__ = [
    "MAX_PATH_LENGTH",
    "UNREADABLE",
    "certificate_identities",
    "check_identity",
    "check_signing_usage",
    "check_valid_at",
    "describe",
    "verify_chain",
]

MAX_PATH_LENGTH = 8
"""Certificates in a path, leaf and root included; longer paths are refused, not searched."""
UNREADABLE = (ValueError, x509.InvalidVersion)
"""What cryptography raises for bytes it cannot load as a certificate; a bad version field is not a ValueError."""

# Critical extensions whose meaning is enforced here (or, for the SAN, by identity checks).
_UNDERSTOOD = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    }
)

_E = TypeVar("_E", bound=x509.ExtensionType)


def describe(cert: x509.Certificate) -> str:
    """The certificate's subject as RFC 4514 text, the way errors and results name it."""
    return cert.subject.rfc4514_string() or "<empty subject>"


def verify_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    at: datetime,
    *,
    require_signing_usage: bool = True,
) -> tuple[x509.Certificate, ...]:
    """The path leaf → … → root, valid at ``at``; CertificateError with the precise reason otherwise.

    ``require_signing_usage=False`` is for vendor endorsement keys (AMD's VCEK, say) that carry no key
    usage at all: their role is fixed by the vendor's chain, not by an extension.
    """
    if at.tzinfo is None:
        raise AttestError("the verification time must be timezone-aware")
    if not roots:
        raise CertificateError("no certificate roots are configured; nothing can be trusted")
    root_ders = {_der(r) for r in roots}
    if _der(leaf) in root_ders:
        raise CertificateError(f"the signing certificate '{describe(leaf)}' is a trusted root itself")
    if len(intermediates) >= MAX_PATH_LENGTH:
        raise CertificateError(f"the bundle carries {len(intermediates)} intermediate certificates, too many")
    _check_critical_extensions(leaf)
    check_valid_at(leaf, at)
    if require_signing_usage:
        check_signing_usage(leaf)

    issuers = [(r, True) for r in roots] + [(c, False) for c in intermediates if _der(c) not in root_ders]
    tried: set[tuple[bytes, bytes]] = set()  # (child, issuer) links: each is checked once, whatever the path
    problems: list[str] = []

    def extend(path: tuple[x509.Certificate, ...]) -> tuple[x509.Certificate, ...] | None:
        child, on_path = path[-1], {_der(c) for c in path}
        if len(path) > 1 and _self_signed(child):  # a self-signed CA that is not a root ends the path
            problems.append(_dead_end(child))
            return None
        candidates = [(c, is_root) for c, is_root in issuers if c.subject == child.issuer and _der(c) not in on_path]
        if not candidates:
            problems.append(_dead_end(child))
        for issuer, is_root in candidates:
            link = (_der(child), _der(issuer))
            if link in tried:
                continue
            tried.add(link)
            try:
                _check_issuer(issuer, path, at)
            except CertificateError as exc:
                problems.append(exc.reason)
                continue
            if is_root:
                return (*path, issuer)
            if len(path) + 1 >= MAX_PATH_LENGTH:
                problems.append(f"the path through '{describe(issuer)}' is longer than {MAX_PATH_LENGTH} certificates")
            elif found := extend((*path, issuer)):
                return found
        return None

    path = extend((leaf,))
    if path is None:
        raise CertificateError("; ".join(dict.fromkeys(problems)))
    return path


def check_valid_at(cert: x509.Certificate, at: datetime) -> None:
    """CertificateError naming the certificate and its dates if ``at`` is outside its validity."""
    if at < cert.not_valid_before_utc:
        raise CertificateError(
            f"certificate '{describe(cert)}' is not valid until {cert.not_valid_before_utc.isoformat()} "
            f"(verification time {at.isoformat()})"
        )
    if at > cert.not_valid_after_utc:
        raise CertificateError(
            f"certificate '{describe(cert)}' expired at {cert.not_valid_after_utc.isoformat()} "
            f"(verification time {at.isoformat()})"
        )


def check_signing_usage(cert: x509.Certificate) -> None:
    """Either keyUsage digitalSignature or extendedKeyUsage codeSigning suffices, as in model-signing."""
    usage = _extension(cert, x509.KeyUsage)
    if usage is not None and usage.digital_signature:
        return
    extended = _extension(cert, x509.ExtendedKeyUsage)
    if extended is not None and ExtendedKeyUsageOID.CODE_SIGNING in extended:
        return
    raise CertificateError(
        f"certificate '{describe(cert)}' may not sign: it has neither keyUsage digitalSignature "
        "nor extendedKeyUsage codeSigning"
    )


def certificate_identities(cert: x509.Certificate) -> tuple[str, ...]:
    """The names a certificate vouches for: SAN emails, URIs and DNS names, then the subject's CN."""
    names: list[str] = []
    san = _extension(cert, x509.SubjectAlternativeName)
    if san is not None:
        names += san.get_values_for_type(x509.RFC822Name)
        names += san.get_values_for_type(x509.UniformResourceIdentifier)
        names += san.get_values_for_type(x509.DNSName)
    names += [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return tuple(dict.fromkeys(names))


def check_identity(cert: x509.Certificate, allowed: Sequence[str]) -> None:
    """IdentityError unless the certificate names one of ``allowed`` exactly; an empty list allows no one."""
    names = certificate_identities(cert)
    if not allowed:
        raise IdentityError(f"certificate '{describe(cert)}' is not allowed: no identities are allowed")
    if not set(names) & set(allowed):
        raise IdentityError(
            f"certificate names {', '.join(names) or 'nothing'}, none of which is allowed "
            f"(allowed: {', '.join(allowed)})"
        )


def _check_issuer(issuer: x509.Certificate, path: tuple[x509.Certificate, ...], at: datetime) -> None:
    """CertificateError saying why ``issuer`` cannot extend ``path`` (leaf first)."""
    child, name = path[-1], describe(issuer)
    try:
        child.verify_directly_issued_by(issuer)
    except InvalidSignature:
        raise CertificateError(f"'{name}' did not sign '{describe(child)}': the signature does not verify") from None
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CertificateError(f"cannot check that '{name}' signed '{describe(child)}': {exc}") from None
    _check_critical_extensions(issuer)
    check_valid_at(issuer, at)
    constraints = _extension(issuer, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        raise CertificateError(
            f"'{name}' issued '{describe(child)}' but is not a CA (basicConstraints CA:TRUE is missing)"
        )
    usage = _extension(issuer, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        raise CertificateError(f"'{name}' issued '{describe(child)}' but its keyUsage lacks keyCertSign")
    below = sum(1 for c in path[1:] if c.subject != c.issuer)  # self-issued CAs do not count (RFC 5280)
    if constraints.path_length is not None and below > constraints.path_length:
        raise CertificateError(
            f"'{name}' allows {constraints.path_length} intermediate CAs below it, the path has {below}"
        )


def _dead_end(cert: x509.Certificate) -> str:
    name = describe(cert)
    if _self_signed(cert):
        return f"'{name}' is self-signed but is not a configured root"
    issuer = cert.issuer.rfc4514_string()
    return f"'{name}' was issued by '{issuer}', which is neither a configured root nor in the bundle"


def _self_signed(cert: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(cert)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _check_critical_extensions(cert: x509.Certificate) -> None:
    try:
        extensions = cert.extensions
    except ValueError as exc:
        raise CertificateError(f"certificate '{describe(cert)}' has malformed extensions: {exc}") from None
    unknown = [e.oid.dotted_string for e in extensions if e.critical and e.oid not in _UNDERSTOOD]
    if unknown:
        raise CertificateError(f"certificate '{describe(cert)}' has unsupported critical extensions: {unknown}")


def _extension(cert: x509.Certificate, kind: type[_E]) -> _E | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as exc:
        raise CertificateError(f"certificate '{describe(cert)}' has malformed extensions: {exc}") from None


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)
