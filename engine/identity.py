"""The engine process's identity key: what TEE evidence binds the loaded model to.

A key pair is made when the engine starts and never leaves the process. Its public half goes into the
attestation report data, so the evidence says which process loaded the model; the private half signs
the engine's answers to attestation challenges, so a client (the gateway) can check at any time that it
talks to that very process, not to another one behind the same port.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attest.keys import sign_bytes

__all__ = ["EngineIdentity", "challenge_message"]

_CHALLENGE_DOMAIN = b"modelgate/engine-attestation/v1\x00"


def challenge_message(nonce: bytes, record: bytes) -> bytes:
    """What the engine signs to answer a challenge: the caller's nonce and the load record's digest.

    ``record`` is the load record as JSON with sorted keys, exactly as the engine sends it.
    """
    return _CHALLENGE_DOMAIN + nonce + hashlib.sha256(record).digest()


@dataclass(frozen=True, slots=True)
class EngineIdentity:
    """An ECDSA P-256 key pair that lives as long as the engine process."""

    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> EngineIdentity:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_der(self) -> bytes:
        """DER SubjectPublicKeyInfo, the form the binding hashes."""
        return self.private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, data: bytes) -> bytes:
        return sign_bytes(self.private_key, data)
