"""DSSE envelopes: the signed wrapper around an in-toto statement.

The signature covers the pre-authentication encoding (PAE) of the payload type and the payload, so a
payload cannot be reinterpreted as another type. The JSON form is read strictly (see ``strict_json``):
two readers that repaired a malformed envelope differently could disagree about which bytes were signed.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from attest.errors import BundleFormatError
from attest.strict_json import b64decode_strict, expect_object

__all__ = ["IN_TOTO_PAYLOAD_TYPE", "Envelope", "Signature", "pae"]

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding; lengths are byte counts in ASCII decimal."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


@dataclass(frozen=True, slots=True)
class Signature:
    """One DSSE signature; ``keyid`` is an unauthenticated hint and never selects a key on its own."""

    sig: bytes
    keyid: str = ""


@dataclass(frozen=True, slots=True)
class Envelope:
    """A DSSE envelope with exactly one signature (the only shape Sigstore bundles carry)."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def __post_init__(self) -> None:
        if len(self.signatures) != 1:
            raise BundleFormatError(
                f"the DSSE envelope has {len(self.signatures)} signatures; exactly one is supported for now"
            )

    @property
    def signature(self) -> bytes:
        """The envelope's one signature."""
        return self.signatures[0].sig

    def pae(self) -> bytes:
        """The bytes the signature is over."""
        return pae(self.payload_type, self.payload)

    @classmethod
    def from_json_dict(cls, data: object) -> Envelope:
        """Parse the ``dsseEnvelope`` object of a bundle, refusing anything ambiguous."""
        obj = expect_object(data, "dsseEnvelope", required=("payload", "payloadType", "signatures"))
        payload_type = obj["payloadType"]
        if not isinstance(payload_type, str) or not payload_type:
            raise BundleFormatError("dsseEnvelope.payloadType must be a non-empty string")
        payload = b64decode_strict(obj["payload"], "dsseEnvelope.payload")
        raw_signatures = obj["signatures"]
        if not isinstance(raw_signatures, list):
            raise BundleFormatError("dsseEnvelope.signatures must be a list")
        signatures = []
        for i, raw in enumerate(raw_signatures):
            where = f"dsseEnvelope.signatures[{i}]"
            sig_obj = expect_object(raw, where, required=("sig",), optional=("keyid",))
            keyid = sig_obj.get("keyid", "")
            if not isinstance(keyid, str):
                raise BundleFormatError(f"{where}.keyid must be a string")
            signatures.append(Signature(b64decode_strict(sig_obj["sig"], f"{where}.sig"), keyid))
        return cls(payload_type, payload, tuple(signatures))

    def to_json_dict(self) -> dict[str, Any]:
        """The protobuf-JSON form that sigstore-python and model-signing write."""
        return {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "payloadType": self.payload_type,
            "signatures": [
                {"sig": base64.b64encode(s.sig).decode("ascii"), "keyid": s.keyid} for s in self.signatures
            ],
        }
