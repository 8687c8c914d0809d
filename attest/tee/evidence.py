"""The evidence bundle: everything needed to re-verify a TEE attestation offline, later, anywhere.

One JSON document holds the evidence of each platform (an SNP report, a TDX quote, a GPU report) with
the certificates and collateral it is judged against, the nonce it answers, the binding it was made
for, the capture time and the provider that captured it. Every blob is base64 of the exact bytes:
collateral signatures cover exact text, so nothing is re-serialized.

    {"kind": "modelgate-evidence", "version": 1, "provider": "configfs-tsm",
     "captured_at": "2026-12-01T10:00:00+00:00", "nonce": "<hex>",
     "binding": {"manifest_digest": "<hex>", "identity_key": "<hex DER>"},
     "items": [{"platform": "sev-snp", "parts": {"report": "<base64>", "vcek": "<base64>"}}]}
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast, get_args

from attest.errors import AttestError, EvidenceFormatError
from attest.strict_json import b64decode_strict, expect_object, loads_strict
from attest.tee.binding import Binding
from attest.tee.claims import Platform
from sbom.fileio import DocumentTooLarge, read_capped, write_atomically

__all__ = ["PARTS", "TDX_COLLATERAL", "EvidenceBundle", "EvidenceItem", "ReplayProvider", "read_evidence_bundle"]

MAX_BUNDLE_BYTES = 16 << 20
_KIND = "modelgate-evidence"

TDX_COLLATERAL = ("tcb_info", "tcb_info_chain", "qe_identity", "qe_identity_chain", "pck_crl", "root_crl")
"""Intel PCS collateral for a TDX quote: the JSON responses as sent, their PEM issuer chains, DER or PEM CRLs."""

PARTS: Mapping[Platform, tuple[frozenset[str], frozenset[str]]] = {
    "sev-snp": (frozenset({"report"}), frozenset({"auxblob", "vcek", "vlek", "ask", "asvk", "ark"})),
    "tdx": (
        frozenset({"quote"}),
        frozenset(TDX_COLLATERAL),
    ),
    "nvidia-gpu": (frozenset({"report", "certificate_chain"}), frozenset({"rim_driver", "rim_vbios"})),
    "simulated": (frozenset({"report", "signature"}), frozenset()),
}
"""Per platform: the parts an item must have, and those it may have."""


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    """One platform's evidence and the material it is judged against."""

    platform: Platform
    parts: Mapping[str, bytes]

    def __post_init__(self) -> None:
        if self.platform not in PARTS:
            raise EvidenceFormatError(f"unknown evidence platform {self.platform!r}")
        required, optional = PARTS[self.platform]
        if missing := required - self.parts.keys():
            raise EvidenceFormatError(f"{self.platform} evidence lacks {', '.join(sorted(missing))}")
        if unknown := self.parts.keys() - required - optional:
            raise EvidenceFormatError(f"{self.platform} evidence has unknown parts: {', '.join(sorted(unknown))}")
        object.__setattr__(self, "parts", MappingProxyType(dict(self.parts)))


@dataclass(frozen=True, slots=True)
class EvidenceBundle:
    """Evidence as captured: ``captured_at``, ``nonce`` and ``binding`` are None for a bare report file."""

    items: tuple[EvidenceItem, ...]
    provider: str
    captured_at: datetime | None = None
    nonce: bytes | None = None
    binding: Binding | None = field(default=None)

    def __post_init__(self) -> None:
        if not self.items:
            raise EvidenceFormatError("the evidence bundle holds no evidence")
        if self.captured_at is not None and self.captured_at.tzinfo is None:
            raise AttestError("the capture time must be timezone-aware")
        if self.binding is not None and self.nonce != self.binding.nonce:
            raise EvidenceFormatError("the bundle's nonce differs from its binding's nonce")

    @property
    def simulated(self) -> bool:
        return any(item.platform == "simulated" for item in self.items)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"kind": _KIND, "version": 1, "provider": self.provider}
        if self.captured_at is not None:
            document["captured_at"] = self.captured_at.isoformat()
        if self.nonce is not None:
            document["nonce"] = self.nonce.hex()
        if self.binding is not None:
            document["binding"] = {"manifest_digest": self.binding.manifest_digest,
                                   "identity_key": self.binding.identity_key.hex()}
        document["items"] = [
            {"platform": item.platform,
             "parts": {name: base64.b64encode(data).decode("ascii") for name, data in sorted(item.parts.items())}}
            for item in self.items
        ]
        return document

    def write(self, path: Path) -> None:
        try:
            write_atomically(path, json.dumps(self.to_json(), indent=2).encode() + b"\n")
        except OSError as exc:
            raise AttestError(f"cannot write {path}: {exc.strerror or exc}") from None

    @classmethod
    def from_json_bytes(cls, raw: bytes) -> EvidenceBundle:
        """Parse a bundle strictly: unknown fields, bad base64 or hex and duplicate keys are refused."""
        doc = expect_object(
            loads_strict(raw, "evidence bundle", max_bytes=MAX_BUNDLE_BYTES, error=EvidenceFormatError),
            "evidence bundle", required=("kind", "version", "provider", "items"),
            optional=("captured_at", "nonce", "binding"), error=EvidenceFormatError,
        )
        if doc["kind"] != _KIND or doc["version"] != 1:
            raise EvidenceFormatError(f"not a version 1 {_KIND} document")
        if not isinstance(doc["provider"], str) or not isinstance(doc["items"], list):
            raise EvidenceFormatError("evidence bundle: provider must be a string and items a list")
        nonce = _hex(doc["nonce"], "nonce") if "nonce" in doc else None
        binding = None
        if "binding" in doc:
            spec = expect_object(doc["binding"], "binding", required=("manifest_digest", "identity_key"),
                                 error=EvidenceFormatError)
            if nonce is None or not isinstance(spec["manifest_digest"], str):
                raise EvidenceFormatError("binding: needs the bundle's nonce and a manifest_digest string")
            try:
                binding = Binding(nonce, spec["manifest_digest"], _hex(spec["identity_key"], "binding.identity_key"))
            except AttestError as exc:
                raise EvidenceFormatError(f"binding: {exc.reason}") from None
        return cls(
            items=tuple(_item(entry, i) for i, entry in enumerate(doc["items"])),
            provider=doc["provider"],
            captured_at=_time(doc["captured_at"]) if "captured_at" in doc else None,
            nonce=nonce,
            binding=binding,
        )


class ReplayProvider:
    """Evidence from a file, whatever report data is asked for: a load accepts it only if it happens to carry
    this load's binding, which captured evidence cannot. For testing the gate and for re-verification."""

    name = "replay"

    def __init__(self, path: Path) -> None:
        self.path = path

    def collect(self, report_data: bytes) -> tuple[EvidenceItem, ...]:
        return read_evidence_bundle(self.path).items


def read_evidence_bundle(path: Path) -> EvidenceBundle:
    """A bundle from a file, as it was captured."""
    try:
        raw = read_capped(path, MAX_BUNDLE_BYTES)
    except DocumentTooLarge as exc:
        raise EvidenceFormatError(str(exc)) from None
    except OSError as exc:
        raise AttestError(f"cannot read {path}: {exc.strerror or exc}") from None
    return EvidenceBundle.from_json_bytes(raw)


def _item(entry: object, index: int) -> EvidenceItem:
    what = f"items[{index}]"
    item = expect_object(entry, what, required=("platform", "parts"), error=EvidenceFormatError)
    if item["platform"] not in get_args(Platform):
        raise EvidenceFormatError(f"{what}: unknown platform {item['platform']!r}")
    parts = item["parts"]
    if not isinstance(parts, dict):
        raise EvidenceFormatError(f"{what}.parts must be a JSON object")
    decoded = {name: b64decode_strict(value, f"{what}.parts.{name}", error=EvidenceFormatError)
               for name, value in parts.items()}
    return EvidenceItem(cast(Platform, item["platform"]), decoded)


def _hex(value: object, what: str) -> bytes:
    try:
        if not isinstance(value, str) or value != value.lower():
            raise ValueError
        return bytes.fromhex(value)
    except ValueError:
        raise EvidenceFormatError(f"{what} must be lower-case hex") from None


def _time(value: object) -> datetime:
    try:
        if not isinstance(value, str):
            raise ValueError
        when = datetime.fromisoformat(value)
    except ValueError:
        raise EvidenceFormatError("captured_at must be an ISO 8601 time") from None
    if when.tzinfo is None:
        raise EvidenceFormatError("captured_at must carry a time zone")
    return when
