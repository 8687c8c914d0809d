"""What a load's evidence must be bound to: a fresh nonce, the verified model manifest and the engine's key.

TEE evidence carries 64 caller-chosen bytes (SNP REPORT_DATA, TDX REPORTDATA) and the GPU report a 32-byte
nonce. Filling them with a hash of (nonce, manifest digest, engine key) makes the evidence say "this
machine, now, loading exactly this model, into the process holding this key": evidence captured for
another model, for an earlier load or by another process cannot match.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from attest.errors import AttestError

__all__ = ["NONCE_BYTES", "Binding", "new_nonce"]

NONCE_BYTES = 32
_DOMAIN = b"modelgate/attestation-binding/v1\x00"


def new_nonce() -> bytes:
    """A fresh random nonce for one load."""
    return secrets.token_bytes(NONCE_BYTES)


@dataclass(frozen=True, slots=True)
class Binding:
    """The inputs of the report data; anyone holding them can recompute it."""

    nonce: bytes
    manifest_digest: str
    """SHA-256 (hex) of the in-toto statement whose signature was verified."""
    identity_key: bytes
    """The engine's identity public key, DER SubjectPublicKeyInfo."""

    def __post_init__(self) -> None:
        if len(self.nonce) != NONCE_BYTES:
            raise AttestError(f"the attestation nonce must be {NONCE_BYTES} bytes, not {len(self.nonce)}")
        try:
            if len(bytes.fromhex(self.manifest_digest)) != 32:
                raise ValueError
        except ValueError:
            raise AttestError("the manifest digest must be a SHA-256 in hex") from None
        if not self.identity_key:
            raise AttestError("the engine identity key is empty")

    def report_data(self) -> bytes:
        """The 64 bytes that SNP and TDX evidence must carry."""
        key_digest = hashlib.sha256(self.identity_key).digest()
        return hashlib.sha512(_DOMAIN + self.nonce + bytes.fromhex(self.manifest_digest) + key_digest).digest()

    def gpu_nonce(self) -> bytes:
        """The 32-byte SPDM nonce for GPU evidence: the first half of the report data."""
        return self.report_data()[:NONCE_BYTES]

    def to_json(self) -> dict[str, Any]:
        return {
            "nonce": self.nonce.hex(),
            "manifest_digest": self.manifest_digest,
            "identity_key": self.identity_key.hex(),
            "report_data": self.report_data().hex(),
        }
