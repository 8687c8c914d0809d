"""Errors of signing and verification.

    ModelgateError (policies.errors)
    └── AttestError                 exit 2: the signer's or verifier's own inputs are unusable
        │                           (unreadable key, bad trust config, conflicting options)
        └── VerificationError       exit 1: the artifact or its bundle did not verify
            ├── BundleFormatError   the bundle is not a well-formed Sigstore bundle / DSSE / in-toto
            ├── SignatureError      the signature does not verify with the trusted key
            ├── CertificateError    the certificate chain, validity time or key usage is wrong
            ├── IdentityError       the signer is not one the trust policy names
            ├── SubjectMismatchError  the files on disk differ from the signed subjects
            ├── PolicyViolation     signed and intact, but the policy forbids it
            ├── EvidenceFormatError  TEE evidence or collateral that cannot be parsed (truncated, wrong size,
            │                        unknown version, a TDREPORT offered as a quote)
            └── AttestationRefused  the TEE evidence is not authentic, not fresh or not acceptable

Verification never returns a bool: it returns a result or raises one of these with the reason.
"""

from __future__ import annotations

from policies.errors import ModelgateError

__all__ = [
    "AttestError",
    "BundleFormatError",
    "AttestationRefused",
    "CertificateError",
    "EvidenceFormatError",
    "IdentityError",
    "PolicyViolation",
    "SignatureError",
    "SubjectMismatchError",
    "VerificationError",
]


class AttestError(ModelgateError):
    """Signing or verification could not start: an input of the operator's is unusable."""


class VerificationError(AttestError):
    """The artifact did not verify."""

    exit_code = 1


class BundleFormatError(VerificationError):
    """The bundle, its DSSE envelope or its in-toto statement is malformed."""


class SignatureError(VerificationError):
    """The signature does not verify."""


class CertificateError(VerificationError):
    """The certificate chain does not lead to a trusted root at the verification time."""


class IdentityError(VerificationError):
    """The signer is authentic but not one that is trusted."""


class SubjectMismatchError(VerificationError):
    """The model files are not exactly the signed subjects; ``path`` names the file."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path


class PolicyViolation(VerificationError):
    """The artifact is authentic but the policy does not accept it."""


class EvidenceFormatError(VerificationError):
    """TEE evidence or its collateral is malformed: nothing in it can be judged."""


class AttestationRefused(VerificationError):
    """The TEE evidence was judged and refused; ``violations`` lists every reason, in check order."""

    def __init__(self, violations: tuple[str, ...]) -> None:
        super().__init__("attestation refused: " + "; ".join(violations))
        self.violations = violations
