"""What a verified bundle yields: the signed payload and who signed it, as of when.

These are built only after every check passed, and the payload is the very object whose signature was
checked; nothing here is ever filled from unverified parts of a bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

__all__ = ["SignerInfo", "SignerKind", "TimeSource", "VerifiedEnvelope"]

SignerKind = Literal["key", "certificate", "keyless"]
TimeSource = Literal["given", "clock", "transparency-log"]


@dataclass(frozen=True, slots=True)
class SignerInfo:
    """The trusted signer of a bundle."""

    kind: SignerKind

    key_id: str
    """SHA-256 of the signing key's PEM SubjectPublicKeyInfo (the bundle hint convention)."""

    time: datetime
    """When the signature and certificates were checked to be valid."""

    time_source: TimeSource
    """``given``: the caller's time; ``clock``: this machine's clock, read once; ``transparency-log``:
    the Rekor integrated time, covered by the log's signed inclusion promise."""

    identity: tuple[str, ...] = ()
    """Certificate identities (SAN emails, URIs, DNS names, CN) or the matched keyless identity."""

    issuer: str | None = None
    """The issuing CA's subject, or the OIDC issuer of a keyless signer."""

    chain: tuple[str, ...] = ()
    """Subjects of the verified path, leaf first, root last (certificate signing only: for keyless
    bundles sigstore-python checks the Fulcio path and does not return it)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key_id": self.key_id,
            "identity": list(self.identity),
            "issuer": self.issuer,
            "chain": list(self.chain),
            "time": self.time.isoformat(),
            "time_source": self.time_source,
        }


@dataclass(frozen=True, slots=True)
class VerifiedEnvelope:
    """A DSSE payload whose signature verified against a trusted signer."""

    payload_type: str
    payload: bytes
    signer: SignerInfo
