"""Signing payloads into Sigstore bundles, and verifying bundles back to a payload and its signer.

    signer = KeySigner(load_private_key(Path("release.key.pem")))
    bundle = signer.sign("application/vnd.in-toto+json", statement_bytes)
    verified = verify_bundle(json.dumps(bundle).encode(), TrustAnchors(keys=(public_key,)))

Verification dispatches on how the bundle says it was signed, then accepts it only against the
anchors of that kind; no anchors at all means nothing verifies. The payload returned is the very one
whose signature was checked, never re-read from the bundle afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from attest.bundle_format import ParsedBundle, certificate_bundle, key_bundle, parse_bundle
from attest.certs import (
    certificate_identities,
    check_identity,
    check_signing_usage,
    check_valid_at,
    describe,
    verify_chain,
)
from attest.dsse import Envelope, Signature, pae
from attest.errors import AttestError, CertificateError, IdentityError, SignatureError
from attest.keyless import KeylessSigner, verify_keyless
from attest.keys import PrivateKey, as_private_key, as_public_key, key_id, sign_bytes, verify_bytes
from attest.result import SignerInfo, TimeSource, VerifiedEnvelope
from attest.trust import TrustAnchors

__all__ = [
    "CertificateSigner",
    "KeySigner",
    "KeylessSigner",
    "Signer",
    "SignerInfo",
    "VerifiedEnvelope",
    "verify_bundle",
]


class Signer(Protocol):
    """Anything that turns a payload into a Sigstore bundle (as a JSON-ready dict)."""

    def sign(self, payload_type: str, payload: bytes) -> dict[str, Any]: ...


class KeySigner:
    """Signs with a long-lived key; the bundle carries only the key's hint, so verifiers must hold the key."""

    def __init__(self, private_key: PrivateKey) -> None:
        self._key = as_private_key(private_key)

    def sign(self, payload_type: str, payload: bytes) -> dict[str, Any]:
        return key_bundle(_envelope(self._key, payload_type, payload), self._key.public_key())


class CertificateSigner:
    """Signs with a key certified by a private CA; the bundle carries the chain, leaf first."""

    def __init__(self, private_key: PrivateKey, chain: Sequence[x509.Certificate]) -> None:
        if not chain:
            raise AttestError("certificate signing needs the signing certificate")
        self._key = as_private_key(private_key)
        leaf = chain[0]
        if leaf.public_key() != self._key.public_key():
            raise AttestError(f"certificate '{describe(leaf)}' is not for this private key (the public keys differ)")
        try:
            check_signing_usage(leaf)
            check_valid_at(leaf, datetime.now(UTC))
        except CertificateError as exc:
            raise AttestError(f"cannot sign with this certificate: {exc.reason}") from None
        self._chain = tuple(chain)

    def sign(self, payload_type: str, payload: bytes) -> dict[str, Any]:
        return certificate_bundle(_envelope(self._key, payload_type, payload), self._chain)


def _envelope(key: PrivateKey, payload_type: str, payload: bytes) -> Envelope:
    return Envelope(payload_type, payload, (Signature(sign_bytes(key, pae(payload_type, payload))),))


def verify_bundle(
    bundle_bytes: bytes, anchors: TrustAnchors, *, at: datetime | None = None, name: str = "bundle"
) -> VerifiedEnvelope:
    """The bundle's payload and its trusted signer; a VerificationError subclass with the reason otherwise.

    ``at`` is when certificates must be valid (default: now, read once). Keyless bundles are checked
    at the time the transparency log vouches for instead, as Sigstore prescribes.
    """
    anchors.check_not_empty()
    if at is not None and at.tzinfo is None:
        raise AttestError("the verification time must be timezone-aware")
    now, source = (at, "given") if at is not None else (datetime.now(UTC), "clock")
    parsed = parse_bundle(bundle_bytes, name)
    if parsed.kind == "key":
        return _verify_key(parsed, anchors, now, source)
    if parsed.kind == "certificate":
        return _verify_certificate(parsed, anchors, now, source)
    return verify_keyless(bundle_bytes, parsed, anchors, now, source)


def _verify_key(parsed: ParsedBundle, anchors: TrustAnchors, now: datetime, source: TimeSource) -> VerifiedEnvelope:
    if not anchors.keys:
        raise IdentityError("the bundle is signed with a key, but no trusted keys are configured")
    hint = parsed.key_hint
    candidates = [k for k in anchors.keys if hint is None or key_id(k) == hint]
    if not candidates:
        raise IdentityError(f"signed by key {hint}, which is not trusted")
    envelope = parsed.envelope
    for key in candidates:
        try:
            verify_bytes(key, envelope.signature, envelope.pae())
        except SignatureError:
            if len(candidates) == 1:
                raise
            continue
        signer = SignerInfo(kind="key", key_id=key_id(key), time=now, time_source=source)
        return VerifiedEnvelope(envelope.payload_type, envelope.payload, signer)
    raise SignatureError(f"the signature does not verify with any of the {len(candidates)} trusted keys")


def _verify_certificate(
    parsed: ParsedBundle, anchors: TrustAnchors, now: datetime, source: TimeSource
) -> VerifiedEnvelope:
    if not anchors.roots:
        raise IdentityError("the bundle is signed with a certificate, but no certificate roots are configured")
    leaf, *intermediates = parsed.certificates
    path = verify_chain(leaf, intermediates, [cert for cert, _ in anchors.roots], now)
    try:
        public_key = as_public_key(leaf.public_key())
    except (AttestError, ValueError, UnsupportedAlgorithm) as exc:
        raise CertificateError(f"the signing certificate's key cannot be used: {exc}") from None
    envelope = parsed.envelope
    verify_bytes(public_key, envelope.signature, envelope.pae())
    # A root listed with identities restricts whom it may vouch for; listed without, it vouches for anyone.
    allowed = [identities for cert, identities in anchors.roots if cert == path[-1]]
    if all(allowed):
        check_identity(leaf, [name for names in allowed for name in names])
    signer = SignerInfo(
        kind="certificate",
        key_id=key_id(public_key),
        time=now,
        time_source=source,
        identity=certificate_identities(leaf),
        issuer=leaf.issuer.rfc4514_string(),
        chain=tuple(describe(c) for c in path),
    )
    return VerifiedEnvelope(envelope.payload_type, envelope.payload, signer)
