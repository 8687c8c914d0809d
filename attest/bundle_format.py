"""The Sigstore bundle JSON: reading one strictly, and writing the two kinds modelgate signs itself.

A bundle says how it was signed by its verification material: a ``publicKey`` hint (key signing), an
``x509CertificateChain`` (a private CA, as model-signing writes it), or a Fulcio ``certificate`` with a
transparency-log entry (Sigstore keyless; older bundles carry Fulcio chains with log entries too). The
reader decides which, once, and refuses bundles that mix kinds or carry material nothing would check.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attest.certs import UNREADABLE
from attest.dsse import Envelope
from attest.errors import BundleFormatError
from attest.keys import PublicKey, key_id
from attest.result import SignerKind
from attest.strict_json import b64decode_strict, expect_object, loads_strict

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "MAX_BUNDLE_BYTES",
    "ParsedBundle",
    "certificate_bundle",
    "key_bundle",
    "parse_bundle",
]

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
MAX_BUNDLE_BYTES = 16 << 20
_MEDIA_TYPES = frozenset(
    {
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        BUNDLE_MEDIA_TYPE,
    }
)
_MATERIALS = ("publicKey", "x509CertificateChain", "certificate")
_MAX_CERTIFICATES = 10
_MAX_LOG_TIME = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a datetime can hold


@dataclass(frozen=True, slots=True)
class ParsedBundle:
    """A well-formed bundle, not yet verified: nothing in it is trusted."""

    kind: SignerKind
    envelope: Envelope

    key_hint: str | None = None
    """``publicKey.hint`` of a key-signed bundle, if it has one."""

    certificates: tuple[x509.Certificate, ...] = ()
    """The chain of a certificate-signed bundle, leaf first (keyless bundles are parsed by sigstore)."""

    log_time: datetime | None = None
    """The log entry's integrated time, when an inclusion promise (which signs it) comes with it."""


def parse_bundle(raw: bytes, name: str = "bundle") -> ParsedBundle:
    """Read ``raw`` as a Sigstore bundle with a DSSE envelope; BundleFormatError says what is wrong."""
    doc = expect_object(
        loads_strict(raw, name, max_bytes=MAX_BUNDLE_BYTES),
        name,
        required=("mediaType", "verificationMaterial"),
        optional=("dsseEnvelope", "messageSignature"),
    )
    if not isinstance(doc["mediaType"], str) or doc["mediaType"] not in _MEDIA_TYPES:
        raise BundleFormatError(f"{name}: mediaType {doc['mediaType']!r} is not a Sigstore bundle (v0.1 to v0.3)")
    if "dsseEnvelope" not in doc:
        raise BundleFormatError(f"{name} holds no DSSE envelope; plain message signatures are not supported")
    if "messageSignature" in doc:
        raise BundleFormatError(f"{name} holds both a DSSE envelope and a message signature")
    envelope = Envelope.from_json_dict(doc["dsseEnvelope"])
    material = expect_object(
        doc["verificationMaterial"],
        "verificationMaterial",
        optional=(*_MATERIALS, "tlogEntries", "timestampVerificationData"),
    )
    kinds = [k for k in _MATERIALS if k in material]
    if len(kinds) != 1:
        raise BundleFormatError(
            f"verificationMaterial must hold exactly one of {', '.join(_MATERIALS)}; it holds {kinds or 'none'}"
        )
    entries = material.get("tlogEntries", [])
    if not isinstance(entries, list):
        raise BundleFormatError("verificationMaterial.tlogEntries must be a list")
    if entries or _has_timestamps(material.get("timestampVerificationData")):
        if kinds[0] == "publicKey":
            raise BundleFormatError("key-signed bundles with log entries or timestamps are not supported")
        if len(entries) != 1:
            raise BundleFormatError(f"a keyless bundle needs exactly one transparency-log entry, not {len(entries)}")
        return ParsedBundle("keyless", envelope, log_time=_log_time(entries[0]))
    if kinds[0] == "certificate":
        raise BundleFormatError("a single-certificate (keyless) bundle needs a transparency-log entry")
    if kinds[0] == "publicKey":
        key = expect_object(material["publicKey"], "verificationMaterial.publicKey", optional=("hint",))
        hint = key.get("hint")
        if hint is not None and (not isinstance(hint, str) or not hint):
            raise BundleFormatError("verificationMaterial.publicKey.hint must be a non-empty string")
        return ParsedBundle("key", envelope, key_hint=hint)
    return ParsedBundle("certificate", envelope, certificates=_chain(material["x509CertificateChain"]))


def key_bundle(envelope: Envelope, public_key: PublicKey) -> dict[str, Any]:
    """A key-signed bundle, hinting the key the way model-signing does so its verifier accepts it."""
    return _bundle({"publicKey": {"hint": key_id(public_key)}, "tlogEntries": []}, envelope)


def certificate_bundle(envelope: Envelope, chain: tuple[x509.Certificate, ...]) -> dict[str, Any]:
    """A certificate-signed bundle: the chain leaf first, as model-signing writes it."""
    raw = [{"rawBytes": base64.b64encode(c.public_bytes(Encoding.DER)).decode("ascii")} for c in chain]
    return _bundle({"x509CertificateChain": {"certificates": raw}, "tlogEntries": []}, envelope)


def _bundle(material: dict[str, Any], envelope: Envelope) -> dict[str, Any]:
    return {"mediaType": BUNDLE_MEDIA_TYPE, "verificationMaterial": material, "dsseEnvelope": envelope.to_json_dict()}


def _chain(data: object) -> tuple[x509.Certificate, ...]:
    where = "verificationMaterial.x509CertificateChain"
    raw = expect_object(data, where, required=("certificates",))["certificates"]
    if not isinstance(raw, list) or not raw:
        raise BundleFormatError(f"{where}.certificates must be a non-empty list")
    if len(raw) > _MAX_CERTIFICATES:
        raise BundleFormatError(f"{where} holds {len(raw)} certificates; at most {_MAX_CERTIFICATES} are read")
    chain = []
    for i, item in enumerate(raw):
        what = f"{where}.certificates[{i}]"
        der = b64decode_strict(expect_object(item, what, required=("rawBytes",))["rawBytes"], f"{what}.rawBytes")
        try:
            chain.append(x509.load_der_x509_certificate(der))
        except UNREADABLE as exc:
            raise BundleFormatError(f"{what} is not a DER X.509 certificate: {exc}") from None
    return tuple(chain)


def _has_timestamps(data: object) -> bool:
    if data is None:
        return False
    obj = expect_object(data, "timestampVerificationData", optional=("rfc3161Timestamps",))
    return bool(obj.get("rfc3161Timestamps"))


def _log_time(entry: object) -> datetime | None:
    """The integrated time, if the entry's inclusion promise covers it; sigstore verifies that promise."""
    if not isinstance(entry, dict):
        raise BundleFormatError("verificationMaterial.tlogEntries[0] must be a JSON object")
    value, promise = entry.get("integratedTime"), entry.get("inclusionPromise")
    if value is None or not isinstance(promise, dict) or not promise.get("signedEntryTimestamp"):
        return None  # nothing signs this time: sigstore does not use it, and neither may we
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if type(value) is not int or not 0 <= value <= _MAX_LOG_TIME:
        raise BundleFormatError("verificationMaterial.tlogEntries[0].integratedTime is not a valid time")
    return datetime.fromtimestamp(value, tz=UTC) if value else None
