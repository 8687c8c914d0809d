"""Signing and verification of model artifacts: Sigstore bundles v0.3, DSSE, in-toto Statements v1.

    >>> import json
    >>> from pathlib import Path
    >>> from attest import KeySigner, TrustAnchors, generate_private_key, sign_model, verify_model
    >>> from policies import shipped_policy
    >>> key = generate_private_key("ecdsa-p256")
    >>> outcome = sign_model(Path("model"), KeySigner(key))                           # doctest: +SKIP
    >>> bundle = json.dumps(outcome.bundle).encode()                                 # doctest: +SKIP
    >>> verify_model(Path("model"), bundle, TrustAnchors(keys=(key.public_key(),)),
    ...              shipped_policy("dev"))                                          # doctest: +SKIP
"""

from attest.bundle import CertificateSigner, KeylessSigner, KeySigner, Signer, verify_bundle
from attest.errors import (
    AttestError,
    BundleFormatError,
    CertificateError,
    IdentityError,
    PolicyViolation,
    SignatureError,
    SubjectMismatchError,
    VerificationError,
)
from attest.keys import generate_private_key, load_private_key, load_public_key
from attest.result import SignerInfo
from attest.signing import SignOutcome, sign_model, write_bundle
from attest.statement import SignedManifest
from attest.trust import TrustAnchors
from attest.verification import Verified, read_bundle, verify_model

__all__ = [
    "AttestError",
    "BundleFormatError",
    "CertificateError",
    "CertificateSigner",
    "IdentityError",
    "KeySigner",
    "KeylessSigner",
    "PolicyViolation",
    "SignOutcome",
    "SignatureError",
    "SignedManifest",
    "Signer",
    "SignerInfo",
    "SubjectMismatchError",
    "TrustAnchors",
    "VerificationError",
    "Verified",
    "generate_private_key",
    "load_private_key",
    "load_public_key",
    "read_bundle",
    "sign_model",
    "verify_bundle",
    "verify_model",
    "write_bundle",
]
