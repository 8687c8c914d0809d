"""The gateway's check of the engine behind it: this process, holding the attested key, loaded that model.

At start the gateway sends the engine a fresh nonce (``GET /v1/attestation``). The answer is the engine's
load record with its evidence bundle, signed by the engine's identity key over the nonce and the record.
The gateway verifies that signature (the answer is live and comes from the key holder), checks that the
evidence binds that key and the record's model manifest, and re-appraises the evidence itself under its
own policy, as of when the engine judged it: the engine's word is not taken for its own attestation. The
record then goes into the audit log as the model-load record of this gateway's upstream.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives.serialization import load_der_public_key

from attest.errors import AttestError, SignatureError
from attest.keys import as_public_key, verify_bytes
from attest.tee.appraisal import AttestationVerdict, appraise
from attest.tee.binding import Binding
from attest.tee.evidence import EvidenceBundle
from attest.tee.times import AppraisalTimes
from engine.identity import challenge_message
from gateway.errors import EngineRefused, GatewayError
from policies.schema import Policy

__all__ = ["EngineAttestation", "check_engine"]


@dataclass(frozen=True)
class EngineAttestation:
    record: dict[str, Any]
    """The engine's ``LoadRecord.to_json()``."""
    verdict: AttestationVerdict
    """The gateway's own appraisal of the record's evidence."""


def check_engine(base_url: str, token: str, policy: Policy, *, timeout_s: float = 10.0) -> EngineAttestation:
    """The verified load record of the engine at ``base_url``; GatewayError saying why it cannot be trusted."""
    nonce = secrets.token_bytes(32)
    try:
        answer = httpx.get(f"{base_url.rstrip('/')}/v1/attestation", params={"nonce": nonce.hex()},
                           headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s).raise_for_status().json()
        record, key = answer["load_record"], bytes.fromhex(answer["identity_key"])
        signature = bytes.fromhex(answer["signature"])
        attestation, evidence = record["attestation"], record["evidence"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise GatewayError(f"the engine at {base_url} did not answer its attestation challenge: {exc}") from None
    if answer.get("nonce") != nonce.hex():
        raise GatewayError("the engine answered another nonce")
    try:
        verify_bytes(as_public_key(load_der_public_key(key)), signature,
                     challenge_message(nonce, json.dumps(record, sort_keys=True).encode()))
    except (SignatureError, AttestError, ValueError) as exc:
        raise EngineRefused(f"the engine's answer is not signed by its identity key: {exc}") from None
    try:
        bundle = EvidenceBundle.from_json_bytes(json.dumps(evidence).encode())
        binding = Binding(bytes.fromhex(attestation["nonce"]), record["manifest_digest"], key)
        judged_at = datetime.fromisoformat(attestation["verified_at"])
    except (AttestError, KeyError, TypeError, ValueError) as exc:
        raise GatewayError(f"the engine's load record carries no usable evidence: {exc}") from None
    verdict = appraise(bundle, policy.attestation, AppraisalTimes(judged_at), policy=policy.name, expected=binding)
    if not verdict.accepted:
        reasons = "; ".join(v.reason for v in verdict.violations)
        raise EngineRefused(f"the engine's attestation does not satisfy policy '{policy.name}': {reasons}")
    return EngineAttestation(record, verdict)
