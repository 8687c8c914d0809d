"""The load gate: evidence bound to the model about to be loaded, collected now, judged by the policy.

The engine calls ``attest_load`` after the model's signature and digests verified and before a single
weight is parsed. A fresh nonce, the verified manifest digest and the engine's identity key make the
report data; the provider's evidence must carry exactly that, so evidence for another model, another
process or an earlier load is refused. The clock is read here, once for the capture and once for the
verification, and both times are in the verdict.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from attest.errors import AttestationRefused, AttestError
from attest.tee.appraisal import AttestationVerdict, appraise
from attest.tee.binding import Binding, new_nonce
from attest.tee.evidence import EvidenceBundle, EvidenceItem
from attest.tee.times import AppraisalTimes
from policies.schema import Policy

__all__ = ["EvidenceProvider", "attest_load"]


class EvidenceProvider(Protocol):
    """Something that produces TEE evidence carrying given report data: configfs-tsm, simulated, replay."""

    name: str

    def collect(self, report_data: bytes) -> tuple[EvidenceItem, ...]: ...


def attest_load(manifest_digest: str, identity_key: bytes, provider: EvidenceProvider,
                policy: Policy) -> AttestationVerdict:
    """Collect and appraise evidence for one load; the caller refuses the load unless it is accepted.

    A provider that cannot produce evidence refuses the load (AttestationRefused): no evidence, no model.
    """
    binding = Binding(new_nonce(), manifest_digest, identity_key)
    captured_at = datetime.now(UTC)
    try:
        items = provider.collect(binding.report_data())
    except AttestError as exc:
        raise AttestationRefused((f"no evidence from the {provider.name} provider: {exc.reason}",)) from exc
    bundle = EvidenceBundle(items, provider.name, captured_at=captured_at, nonce=binding.nonce, binding=binding)
    times = AppraisalTimes(datetime.now(UTC))
    return appraise(bundle, policy.attestation, times, policy=policy.name, expected=binding)
