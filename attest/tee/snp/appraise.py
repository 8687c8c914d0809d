"""The ``acceptable`` checks: an authentic SNP report held against the policy's ``SnpRules``.

Each function returns the reasons the rules refuse the report (empty: accepted). Debug, report-data
binding and evidence age are cross-platform rules, judged by the caller from the claims.
"""

from __future__ import annotations

from collections.abc import Sequence

from attest.tee.snp.report import SIGNING_KEY_VCEK, SIGNING_KEY_VLEK, SnpReport
from attest.tee.snp.tcb import Product, tcb_components
from policies.attestation import SnpRules

__all__ = ["appraise"]


def appraise(report: SnpReport, product: Product | None, rules: SnpRules) -> list[str]:
    """Every reason ``rules`` refuse ``report``; ``product`` decides how its TCB is read."""
    reasons = [
        *_pinned("MEASUREMENT", report.measurement, rules.measurements),
        *_pinned("HOST_DATA", report.host_data, rules.host_data),
        *_pinned("ID_KEY_DIGEST", report.id_key_digest, rules.id_key_digests),
        *_pinned("AUTHOR_KEY_DIGEST", report.author_key_digest, rules.author_key_digests),
        *_min_tcb(report, product, rules),
    ]
    signer = {SIGNING_KEY_VCEK: "vcek", SIGNING_KEY_VLEK: "vlek"}.get(report.signing_key)
    if signer is not None and signer not in rules.signers:
        allowed = ", ".join(rules.signers) or "none"
        reasons.append(f"the report is signed by the {signer.upper()}, which the policy does not accept ({allowed})")
    if report.policy.migrate_ma and not rules.allow_migration_agent:
        reasons.append("the guest policy allows a migration agent (POLICY.MIGRATE_MA), which the policy forbids")
    if report.platform_info.smt_enabled and not rules.allow_smt:
        reasons.append("SMT is enabled on the host (PLATFORM_INFO.SMT_EN), which the policy forbids")
    if report.vmpl > rules.max_vmpl:
        reasons.append(f"the report comes from VMPL {report.vmpl}, above the policy's maximum VMPL {rules.max_vmpl}")
    return reasons


def _pinned(field: str, value: bytes, allowed: Sequence[str]) -> list[str]:
    if not allowed or value.hex() in allowed:
        return []
    return [f"{field} {value.hex()} is not one of the {len(allowed)} values the policy allows"]


def _min_tcb(report: SnpReport, product: Product | None, rules: SnpRules) -> list[str]:
    minimum = rules.min_tcb.model_dump()
    if product is None:
        if any(minimum.values()):
            return [
                "REPORTED_TCB cannot be held against the policy's minimum: the product (and so its layout) is unknown"
            ]
        return []
    reported = tcb_components(report.reported_tcb, product)
    low = [f"{name} {value} < {minimum[name]}" for name, value in reported.items() if value < minimum[name]]
    if not low:
        return []
    return [f"REPORTED_TCB is below the policy's minimum: {', '.join(low)}"]
