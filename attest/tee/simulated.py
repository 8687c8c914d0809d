"""The simulated TEE: evidence for machines without one, signed with a local key. It proves nothing.

It exists so that the whole load path (binding, collection, appraisal, audit record) runs on a laptop.
Its evidence is a small JSON report signed with a key the provider generated itself, so the signature
shows only that the report was not changed in transit. It is labelled ``simulated`` in every claim,
verdict and log line, and a policy accepts it only with ``attestation.allow_simulated: true``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attest.errors import EvidenceFormatError, SignatureError
from attest.keys import PrivateKey, generate_private_key, sign_bytes, verify_bytes
from attest.strict_json import expect_object, loads_strict
from attest.tee.claims import PlatformClaims, PlatformResult, Violation
from attest.tee.evidence import EvidenceItem

__all__ = ["SIMULATED_MEASUREMENT", "SimulatedProvider", "verify_simulated"]

SIMULATED_MEASUREMENT = hashlib.sha384(b"modelgate simulated TEE: no hardware protects this machine").hexdigest()
_KIND = "modelgate-simulated-report"
_MAX_REPORT = 4096


class SimulatedProvider:
    """Makes evidence as a TEE would, bound to the caller's report data, signed with a local key."""

    name = "simulated"

    def __init__(self, key: PrivateKey | None = None) -> None:
        self._key = key or generate_private_key("ecdsa-p256")

    def collect(self, report_data: bytes) -> tuple[EvidenceItem, ...]:
        public = self._key.public_key().public_bytes(serialization.Encoding.DER,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
        report = json.dumps({
            "kind": _KIND,
            "version": 1,
            "report_data": report_data.hex(),
            "measurement": SIMULATED_MEASUREMENT,
            "debug": False,
            "public_key": public.hex(),
        }, sort_keys=True).encode()
        return (EvidenceItem("simulated", {"report": report, "signature": sign_bytes(self._key, report)}),)


def verify_simulated(item: EvidenceItem) -> PlatformResult:
    """Claims of a simulated report; its signature is checked against the key the report itself carries."""
    report = item.parts["report"]
    fields = expect_object(
        loads_strict(report, "simulated report", max_bytes=_MAX_REPORT, error=EvidenceFormatError),
        "simulated report", required=("kind", "version", "report_data", "measurement", "debug", "public_key"),
        error=EvidenceFormatError,
    )
    if fields["kind"] != _KIND or fields["version"] != 1 or not isinstance(fields["debug"], bool):
        raise EvidenceFormatError("not a version 1 simulated report")
    report_data, public_der = _hex(fields["report_data"], 64), _hex(fields["public_key"], None)
    violations: list[Violation] = []
    try:
        key = serialization.load_der_public_key(public_der)
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise SignatureError("the simulated report's key is not an ECDSA key")
        verify_bytes(key, item.parts["signature"], report)
    except (ValueError, SignatureError) as exc:
        violations.append(Violation("authentic", f"simulated report: {getattr(exc, 'reason', exc)}"))
    claims = PlatformClaims(
        platform="simulated",
        format="simulated-v1",
        evidence_sha256=hashlib.sha256(report).hexdigest(),
        report_data=report_data,
        debug=fields["debug"],
        measurements={"measurement": str(fields["measurement"])},
        signer="simulated",
        details={"warning": "simulated: no hardware protects this machine"},
    )
    return PlatformResult(claims, tuple(violations))


def _hex(value: Any, size: int | None) -> bytes:
    try:
        data = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        data = b""
    if not data or (size is not None and len(data) != size):
        raise EvidenceFormatError("simulated report: malformed hex field")
    return data
