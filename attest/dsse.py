"""DSSE envelopes: the signed wrapper around an in-toto statement.

The signature covers the pre-authentication encoding (PAE) of the payload type and the payload, so a
payload cannot be reinterpreted as another type. The JSON form is read strictly: a field of the wrong
type, unknown fields or base64 that does not round-trip are refused rather than repaired, since two
readers that repair differently could disagree about which bytes were signed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attest.errors import BundleFormatError

__all__ = ["IN_TOTO_PAYLOAD_TYPE", "Envelope", "Signature", "b64decode_strict", "pae"]

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding; lengths are byte counts in ASCII decimal."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def b64decode_strict(value: object, what: str) -> bytes:
    """Standard, padded base64 whose re-encoding is the same text; anything else is a BundleFormatError."""
    if not isinstance(value, str):
        raise BundleFormatError(f"{what} must be a base64 string, not {type(value).__name__}")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BundleFormatError(f"{what} is not valid base64") from None
    if base64.b64encode(decoded).decode("ascii") != value:
        raise BundleFormatError(f"{what} is not canonical base64")
    return decoded


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
        obj = _object(data, "dsseEnvelope", required={"payload", "payloadType", "signatures"})
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
            sig_obj = _object(raw, where, required={"sig"}, optional={"keyid"})
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


def _object(
    data: object, what: str, *, required: set[str], optional: set[str] = frozenset()  # type: ignore[assignment]
) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise BundleFormatError(f"{what} must be a JSON object")
    missing = required - data.keys()
    if missing:
        raise BundleFormatError(f"{what} lacks {', '.join(sorted(missing))}")
    unknown = data.keys() - required - optional
    if unknown:
        raise BundleFormatError(f"{what} has unknown fields: {', '.join(sorted(unknown))}")
    return data
