"""Sigstore keyless signing and verification, through sigstore-python's public API only.

This is the one module that talks to sigstore-python, so its exceptions become modelgate's typed
errors here and nowhere else. Verification is offline: the trust root comes from the configured client
trust config, or else from the public-good root that sigstore-python embeds (copied into its cache on
first use, never fetched). Signing needs Fulcio and Rekor; sigstore-python sets no network timeouts, so
signing runs under a deadline and a network that never answers is reported instead of waited on.

The signing time reported is the Rekor integrated time, which the log's signed inclusion promise
covers. Bundles without one (Rekor v2, timestamp-authority only) verify the same way, but the time
reported is then the caller's ``at`` or the clock, and ``time_source`` says which.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from sigstore.dsse import Statement
from sigstore.errors import CertValidationError
from sigstore.errors import Error as SigstoreError
from sigstore.errors import VerificationError as SigstoreVerificationError
from sigstore.models import Bundle, ClientTrustConfig
from sigstore.oidc import IdentityToken
from sigstore.sign import SigningContext
from sigstore.verify import Verifier
from sigstore.verify.policy import AnyOf, Identity, VerificationPolicy

from attest.bundle_format import ParsedBundle
from attest.dsse import IN_TOTO_PAYLOAD_TYPE
from attest.errors import AttestError, BundleFormatError, CertificateError, IdentityError, SignatureError
from attest.keys import key_id
from attest.result import SignerInfo, TimeSource, VerifiedEnvelope
from attest.trust import TrustAnchors
from policies.schema import KeylessIdentity

__all__ = ["SIGN_TIMEOUT_S", "KeylessSigner", "load_trust_config", "verify_keyless"]

SIGN_TIMEOUT_S = 120.0
"""How long keyless signing (OIDC token → Fulcio certificate → Rekor entry) may take in all."""


def load_trust_config(path: Path | None) -> ClientTrustConfig:
    """The client trust config at ``path``, or sigstore-python's embedded public-good one, offline."""
    if path is None:
        try:
            return ClientTrustConfig.production(offline=True)
        except (SigstoreError, OSError, ValueError) as exc:
            raise AttestError(
                f"cannot load sigstore-python's embedded public-good trust root ({exc}); "
                "give a Sigstore client trust config file"
            ) from exc
    try:
        return ClientTrustConfig.from_json(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise AttestError(f"cannot read sigstore trust config {path}: {exc.strerror or exc}") from exc
    except (ValueError, SigstoreError) as exc:  # pydantic's ValidationError is a ValueError
        raise AttestError(f"{path} is not a Sigstore client trust config: {exc}") from None


class KeylessSigner:
    """Signs in-toto statements with a short-lived Fulcio certificate bound to an OIDC identity."""

    def __init__(self, identity_token: str, trust_config: Path | None = None, *, timeout: float = SIGN_TIMEOUT_S):
        try:
            self._token = IdentityToken(identity_token)
        except SigstoreError as exc:
            raise AttestError(f"the OIDC identity token cannot be used: {exc}") from None
        try:
            self._context = SigningContext.from_trust_config(load_trust_config(trust_config))
        except (SigstoreError, ValueError) as exc:
            raise AttestError(f"the Sigstore signing config cannot be used: {exc}") from None
        self._timeout = timeout

    def sign(self, payload_type: str, payload: bytes) -> dict[str, Any]:
        """A keyless bundle over ``payload``, which sigstore-python requires to be an in-toto statement."""
        if payload_type != IN_TOTO_PAYLOAD_TYPE:
            raise AttestError(f"keyless signing only signs in-toto statements, not {payload_type!r}")
        try:
            statement = Statement(payload)
        except SigstoreError as exc:
            raise AttestError(f"sigstore-python refuses the statement: {exc}") from None
        done: list[Bundle | BaseException] = []

        def run() -> None:
            try:
                with self._context.signer(self._token) as signer:
                    done.append(signer.sign_dsse(statement))
            except BaseException as exc:  # handed to the caller's thread below
                done.append(exc)

        worker = threading.Thread(target=run, name="modelgate-keyless-sign", daemon=True)
        worker.start()
        worker.join(self._timeout)
        if not done:
            raise AttestError(
                f"keyless signing did not finish within {self._timeout:g} s; are Fulcio and Rekor reachable?"
            )
        if isinstance(done[0], BaseException):
            raise AttestError(f"keyless signing failed: {type(done[0]).__name__}: {done[0]}") from done[0]
        bundle_json: dict[str, Any] = json.loads(done[0].to_json())
        return bundle_json


def verify_keyless(
    raw: bytes, parsed: ParsedBundle, anchors: TrustAnchors, now: datetime, now_source: TimeSource
) -> VerifiedEnvelope:
    """Verify a keyless bundle against the configured identities; ``raw`` is what ``parsed`` was read from."""
    if not anchors.keyless:
        raise IdentityError("the bundle is signed keyless (Sigstore), but no keyless identities are configured")
    verifier = Verifier(trusted_root=load_trust_config(anchors.sigstore_trust_config).trusted_root)
    try:
        bundle = Bundle.from_json(raw)
    except (SigstoreError, ValueError) as exc:
        raise BundleFormatError(f"sigstore-python cannot read the bundle: {exc}") from None
    policy = _Watched(AnyOf([_policy(k) for k in anchors.keyless]))
    try:
        payload_type, payload = verifier.verify_dsse(bundle, policy)
    except SigstoreVerificationError as exc:
        if policy.refused:  # sigstore checks identities only after the certificate chained to Fulcio
            _match(bundle.signing_certificate, anchors)
        error = CertificateError if isinstance(exc, CertValidationError) else SignatureError
        raise error(f"keyless verification failed: {exc}") from None
    except (SigstoreError, ValueError) as exc:
        raise SignatureError(f"keyless verification failed: {exc}") from None
    if (payload_type, payload) != (parsed.envelope.payload_type, parsed.envelope.payload):
        raise BundleFormatError("sigstore-python and modelgate read different payloads from the bundle")
    cert = bundle.signing_certificate
    matched = _match(cert, anchors)
    signer = SignerInfo(
        kind="keyless",
        key_id=key_id(cert.public_key()),
        time=parsed.log_time or now,
        time_source="transparency-log" if parsed.log_time else now_source,
        identity=(matched.identity,),
        issuer=matched.issuer,
    )
    return VerifiedEnvelope(payload_type, payload, signer)


class _Watched:
    """A sigstore policy wrapper that remembers whether the identity check, rather than the crypto, failed."""

    def __init__(self, inner: VerificationPolicy) -> None:
        self._inner = inner
        self.refused = False

    def verify(self, cert: x509.Certificate) -> None:
        try:
            self._inner.verify(cert)
        except SigstoreVerificationError:
            self.refused = True
            raise


def _policy(anchor: KeylessIdentity) -> Identity:
    return Identity(identity=anchor.identity, issuer=anchor.issuer)


def _match(cert: x509.Certificate, anchors: TrustAnchors) -> KeylessIdentity:
    """The first configured identity the certificate satisfies; IdentityError with every refusal otherwise."""
    reasons = []
    for anchor in anchors.keyless:
        try:
            _policy(anchor).verify(cert)
        except SigstoreVerificationError as exc:
            reasons.append(f"{anchor.identity} ({anchor.issuer}): {exc}")
            continue
        return anchor
    raise IdentityError(f"the keyless signer is not trusted: {'; '.join(reasons)}")
