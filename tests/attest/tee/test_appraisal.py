"""The whole-bundle judgement: binding and age (fresh), required platforms, debug and simulated (acceptable)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from attest.errors import AttestationRefused
from attest.keys import generate_private_key, sign_bytes
from attest.tee.appraisal import appraise
from attest.tee.binding import Binding, new_nonce
from attest.tee.evidence import EvidenceBundle, EvidenceItem
from attest.tee.simulated import SimulatedProvider
from attest.tee.times import AppraisalTimes
from policies.attestation import AttestationSection

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DEV = AttestationSection(allow_simulated=True)
PRODUCTION = AttestationSection()


def _binding() -> Binding:
    return Binding(new_nonce(), "ab" * 32, b"engine-key")


def _bundle(binding: Binding, *, captured_at: datetime = NOW, items: tuple[EvidenceItem, ...] | None = None,
            with_binding: bool = True) -> EvidenceBundle:
    items = items or SimulatedProvider().collect(binding.report_data())
    return EvidenceBundle(items, "simulated", captured_at=captured_at, nonce=binding.nonce,
                          binding=binding if with_binding else None)


def test_bound_recent_simulated_evidence_is_accepted_by_a_dev_policy_and_says_simulated() -> None:
    binding = _binding()
    verdict = appraise(_bundle(binding), DEV, AppraisalTimes(NOW + timedelta(seconds=2)), policy="dev",
                       expected=binding)
    verdict.require()
    assert verdict.accepted and verdict.simulated and "SIMULATED" in verdict.summary
    result = verdict.to_json()
    for name in ("format", "authentic", "fresh", "acceptable", "platform", "measurement", "report_data", "debug",
                 "tcb", "violations", "evidence_sha256"):
        assert name in result
    assert result["platform"] == "simulated" and result["report_data"] == binding.report_data().hex()
    assert result["items"][0]["details"]["warning"].startswith("simulated")


def test_the_production_defaults_refuse_simulated_evidence_with_both_reasons() -> None:
    binding = _binding()
    verdict = appraise(_bundle(binding), PRODUCTION, AppraisalTimes(NOW), policy="production", expected=binding)
    assert verdict.authentic and verdict.fresh and not verdict.acceptable
    with pytest.raises(AttestationRefused) as caught:
        verdict.require()
    assert caught.value.violations == (
        "simulated evidence (signed with a local key: no hardware protects this machine) is refused by policy "
        "'production'",
        "policy 'production' requires authentic evidence of sev-snp or tdx; none was given",
    )


def test_every_required_group_must_be_met() -> None:
    binding = _binding()
    section = AttestationSection(required=(("tdx",), ("nvidia-gpu",)))
    verdict = appraise(_bundle(binding), section, AppraisalTimes(NOW), policy="p", expected=binding)
    reasons = [v.reason for v in verdict.violations if v.check == "acceptable"]
    assert "policy 'p' requires authentic evidence of tdx; none was given" in reasons
    assert "policy 'p' requires authentic evidence of nvidia-gpu; none was given" in reasons


def test_evidence_for_another_nonce_model_or_key_is_not_fresh() -> None:
    binding = _binding()
    bundle = _bundle(binding)
    for other, why in [
        (Binding(new_nonce(), binding.manifest_digest, binding.identity_key), "answers another nonce"),
        (Binding(binding.nonce, "cd" * 32, binding.identity_key), "bound to another model"),
        (Binding(binding.nonce, binding.manifest_digest, b"other-key"), "another engine identity key"),
    ]:
        verdict = appraise(bundle, DEV, AppraisalTimes(NOW), policy="dev", expected=other)
        assert not verdict.fresh and verdict.authentic
        assert any(why in v.reason for v in verdict.violations), verdict.violations


def test_report_data_that_does_not_match_the_binding_is_not_fresh() -> None:
    binding, other = _binding(), _binding()
    items = SimulatedProvider().collect(other.report_data())
    verdict = appraise(_bundle(binding, items=items), DEV, AppraisalTimes(NOW), policy="dev", expected=binding)
    assert [v.check for v in verdict.violations] == ["fresh"]
    assert "does not match the binding" in verdict.violations[0].reason


def test_old_and_future_evidence_is_not_fresh() -> None:
    binding = _binding()
    old = appraise(_bundle(binding, captured_at=NOW - timedelta(seconds=301)), DEV, AppraisalTimes(NOW),
                   policy="dev", expected=binding)
    assert [v.reason for v in old.violations] == ["the evidence is 301 s old; the policy accepts at most 300 s"]
    future = appraise(_bundle(binding, captured_at=NOW + timedelta(hours=1)), DEV, AppraisalTimes(NOW),
                      policy="dev", expected=binding)
    assert "after the verification time" in future.violations[0].reason


def test_a_bare_nonce_is_compared_zero_padded_and_missing_nonces_are_never_fresh() -> None:
    nonce = b"\x01\x02\x03\x04\x05"
    items = SimulatedProvider().collect(nonce.ljust(64, b"\0"))
    bare = EvidenceBundle(items, "file")
    assert appraise(bare, DEV, AppraisalTimes(NOW), policy="dev", expected_nonce=nonce).accepted
    wrong = appraise(bare, DEV, AppraisalTimes(NOW), policy="dev", expected_nonce=b"\x09" * 5)
    assert "does not match nonce 0909090909" in wrong.violations[0].reason
    unknown = appraise(bare, DEV, AppraisalTimes(NOW), policy="dev")
    assert [v.reason for v in unknown.violations] == [
        "no nonce: nothing shows that this evidence was made for this verification (give --nonce)"]


def _signed_report(fields: dict, *, tamper: bool = False) -> EvidenceItem:
    key = generate_private_key("ecdsa-p256")
    from cryptography.hazmat.primitives import serialization

    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    report = json.dumps({"kind": "modelgate-simulated-report", "version": 1, "public_key": public.hex(),
                         "measurement": "00" * 48, **fields}).encode()
    signature = sign_bytes(key, report)
    changed = report.replace(b'"measurement": "00', b'"measurement": "01')
    return EvidenceItem("simulated", {"report": changed if tamper else report,
                                      "signature": signature})


def test_debug_guests_are_refused_unless_the_policy_allows_them() -> None:
    binding = _binding()
    item = _signed_report({"report_data": binding.report_data().hex(), "debug": True})
    bundle = _bundle(binding, items=(item,))
    refused = appraise(bundle, DEV, AppraisalTimes(NOW), policy="dev", expected=binding)
    assert [v.reason for v in refused.violations] == [
        "simulated: the guest is debuggable (the host can read its memory) and policy 'dev' forbids debug"]
    allowed = AttestationSection(allow_simulated=True, allow_debug=True)
    assert appraise(bundle, allowed, AppraisalTimes(NOW), policy="dev", expected=binding).accepted


def test_a_changed_report_is_not_authentic_and_meets_no_requirement() -> None:
    binding = _binding()
    item = _signed_report({"report_data": binding.report_data().hex(), "debug": False}, tamper=True)
    verdict = appraise(_bundle(binding, items=(item,)), DEV, AppraisalTimes(NOW), policy="dev", expected=binding)
    assert not verdict.authentic
    assert verdict.violations[0].reason.startswith("simulated: simulated report: the signature does not verify")
    assert any("requires authentic evidence" in v.reason for v in verdict.violations)


def test_malformed_evidence_is_reported_not_raised() -> None:
    binding = _binding()
    item = EvidenceItem("simulated", {"report": b"{not json", "signature": b""})
    verdict = appraise(_bundle(binding, items=(item,)), DEV, AppraisalTimes(NOW), policy="dev", expected=binding)
    assert not verdict.authentic and verdict.results == ()
    assert verdict.violations[0].reason.startswith("simulated: malformed evidence: simulated report is not valid")
    assert verdict.to_json()["platform"] is None
