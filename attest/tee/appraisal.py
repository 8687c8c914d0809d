"""Judging an evidence bundle against a policy's ``attestation`` section: one verdict, every reason.

The platform verifiers say what each piece of evidence claims and whether it is authentic. This module
adds what only the whole bundle can show: that the evidence answers this verification's nonce and is
bound to the expected model and engine key (fresh), that it is recent enough (fresh), and that the
platforms the policy requires are present and authentic, with no debug guest and no simulated evidence
unless the policy allows them (acceptable). A verdict is accepted only when all three hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from attest.errors import AttestationRefused, EvidenceFormatError
from attest.tee.binding import NONCE_BYTES, Binding
from attest.tee.claims import Check, PlatformResult, Violation
from attest.tee.evidence import TDX_COLLATERAL, EvidenceBundle, EvidenceItem
from attest.tee.nvidia.verify import verify_gpu
from attest.tee.simulated import verify_simulated
from attest.tee.snp.verify import verify_snp
from attest.tee.tdx.collateral import TdxCollateral
from attest.tee.tdx.verify import verify_tdx
from attest.tee.times import AppraisalTimes
from policies.attestation import AttestationSection

__all__ = ["AttestationVerdict", "appraise"]

_CLOCK_SKEW = timedelta(minutes=5)
_SIMULATED = "simulated evidence (signed with a local key: no hardware protects this machine)"


@dataclass(frozen=True, slots=True)
class AttestationVerdict:
    """The outcome of one appraisal; ``require()`` turns a refusal into ``AttestationRefused``."""

    policy: str
    bundle: EvidenceBundle
    times: AppraisalTimes
    results: tuple[PlatformResult, ...]
    violations: tuple[Violation, ...]

    def _holds(self, check: Check) -> bool:
        return not any(v.check == check for v in self.violations)

    @property
    def authentic(self) -> bool:
        return self._holds("authentic")

    @property
    def fresh(self) -> bool:
        return self._holds("fresh")

    @property
    def acceptable(self) -> bool:
        return self._holds("acceptable")

    @property
    def accepted(self) -> bool:
        return not self.violations

    @property
    def simulated(self) -> bool:
        return self.bundle.simulated

    @property
    def summary(self) -> str:
        """One line for people: the platforms, the outcome, and ``SIMULATED`` whenever it is."""
        platforms = "+".join(r.claims.platform for r in self.results) or "no evidence"
        outcome = "accepted" if self.accepted else f"refused ({len(self.violations)} violations)"
        if self.simulated:
            return f"SIMULATED, no hardware protects this machine ({platforms}, {outcome} by policy '{self.policy}')"
        return f"{platforms}, {outcome} by policy '{self.policy}'"

    def require(self) -> None:
        if self.violations:
            raise AttestationRefused(tuple(v.reason for v in self.violations))

    def to_json(self) -> dict[str, Any]:
        """The primary (first) evidence's claims at the top, every item's under ``items``."""
        items = [r.claims.to_json() for r in self.results]
        primary = items[0] if items else {}
        return {
            "accepted": self.accepted,
            "authentic": self.authentic,
            "fresh": self.fresh,
            "acceptable": self.acceptable,
            "simulated": self.simulated,
            "policy": self.policy,
            "format": primary.get("format"),
            "platform": "+".join(r.claims.platform for r in self.results) or None,
            "measurement": primary.get("measurements", {}),
            "report_data": primary.get("report_data"),
            "debug": any(r.claims.debug for r in self.results),
            "tcb": primary.get("tcb", {}),
            "evidence_sha256": primary.get("evidence_sha256"),
            "violations": [v.to_json() for v in self.violations],
            "provider": self.bundle.provider,
            "captured_at": self.bundle.captured_at.isoformat() if self.bundle.captured_at else None,
            "verified_at": self.times.at.isoformat(),
            "nonce": self.bundle.nonce.hex() if self.bundle.nonce is not None else None,
            "binding": self.bundle.binding.to_json() if self.bundle.binding else None,
            "items": items,
        }


def appraise(
    bundle: EvidenceBundle,
    section: AttestationSection,
    times: AppraisalTimes,
    *,
    policy: str,
    expected: Binding | None = None,
    expected_nonce: bytes | None = None,
) -> AttestationVerdict:
    """Verify every item of ``bundle`` and judge the whole against ``section``; never raises on bad evidence.

    ``expected``: the binding the caller made (a load); ``expected_nonce``: a nonce the caller chose (a
    verifier re-checking a bundle). Without either, the bundle's own nonce and binding are checked for
    consistency, and evidence with no nonce at all cannot be fresh.
    """
    results: list[PlatformResult] = []
    violations: list[Violation] = []
    for item in bundle.items:
        try:
            result = _verify_item(item, section, times)
        except EvidenceFormatError as exc:
            violations.append(Violation("authentic", f"{item.platform}: malformed evidence: {exc.reason}"))
            continue
        except Exception as exc:  # noqa: BLE001 - a verifier's own failure must refuse, never escape as a crash
            violations.append(Violation("authentic", f"{item.platform}: the evidence could not be verified "
                                                     f"({type(exc).__name__}: {exc})"))
            continue
        results.append(result)
        violations += [Violation(v.check, f"{item.platform}: {v.reason}") for v in result.violations]
    violations += _freshness(bundle, results, section, times, expected, expected_nonce)
    violations += _acceptability(bundle, results, section, policy)
    return AttestationVerdict(policy, bundle, times, tuple(results), tuple(violations))


def _verify_item(item: EvidenceItem, section: AttestationSection, times: AppraisalTimes) -> PlatformResult:
    parts = item.parts
    if item.platform == "simulated":
        return verify_simulated(item)
    if item.platform == "sev-snp":
        certificates = {name: data for name, data in parts.items() if name not in ("report", "auxblob")}
        return verify_snp(parts["report"], certificates=certificates, auxblob=parts.get("auxblob"),
                          rules=section.snp, times=times)
    if item.platform == "tdx":
        given = [name for name in TDX_COLLATERAL if name in parts]
        if given and len(given) < len(TDX_COLLATERAL):
            missing = ", ".join(n for n in TDX_COLLATERAL if n not in parts)
            raise EvidenceFormatError(f"the TDX collateral is incomplete: {missing} missing")
        collateral = TdxCollateral.from_pcs(**{name: parts[name] for name in TDX_COLLATERAL}) if given else None
        return verify_tdx(parts["quote"], collateral=collateral, rules=section.tdx, times=times)
    # EvidenceItem admits only the platforms of PARTS: what is left is the GPU.
    return verify_gpu(parts["report"], certificate_chain=parts["certificate_chain"], rules=section.gpu,
                      times=times, driver_rim=parts.get("rim_driver"), vbios_rim=parts.get("rim_vbios"))


def _freshness(bundle: EvidenceBundle, results: list[PlatformResult], section: AttestationSection,
               times: AppraisalTimes, expected: Binding | None, expected_nonce: bytes | None) -> list[Violation]:
    found: list[Violation] = []

    def stale(reason: str) -> None:
        found.append(Violation("fresh", reason))

    if expected is not None:
        if bundle.binding is None:
            stale("the evidence carries no binding; this load needs evidence bound to its model and key")
        elif bundle.binding.nonce != expected.nonce:
            stale("the evidence answers another nonce: it was captured for another (or an earlier) load")
        elif bundle.binding.manifest_digest != expected.manifest_digest:
            stale(f"the evidence is bound to another model (manifest {bundle.binding.manifest_digest}, "
                  f"this load's is {expected.manifest_digest})")
        elif bundle.binding.identity_key != expected.identity_key:
            stale("the evidence is bound to another engine identity key")
    if expected_nonce is not None and bundle.nonce is not None and bundle.nonce != expected_nonce:
        stale(f"the evidence answers nonce {bundle.nonce.hex()}, not {expected_nonce.hex()}")
    binding = expected or bundle.binding
    nonce = binding.nonce if binding else (bundle.nonce if bundle.nonce is not None else expected_nonce)
    if nonce is None:
        stale("no nonce: nothing shows that this evidence was made for this verification (give --nonce)")
    else:
        for result in results:
            claims = result.claims
            want = _expected_report_data(claims.platform, binding, nonce)
            if claims.report_data != want:
                what = ("the binding (nonce, model manifest, engine key): it was made for another load, model or "
                        "process") if binding else f"nonce {nonce.hex()}"
                stale(f"{claims.platform}: report data {claims.report_data.hex()} does not match {what}")
    if bundle.captured_at is not None:
        age = times.at - bundle.captured_at
        if age < -_CLOCK_SKEW:
            stale(f"the evidence was captured at {bundle.captured_at.isoformat()}, after the verification time")
        elif age.total_seconds() > section.max_evidence_age_s:
            stale(f"the evidence is {int(age.total_seconds())} s old; the policy accepts at most "
                  f"{section.max_evidence_age_s} s")
    return found


def _expected_report_data(platform: str, binding: Binding | None, nonce: bytes) -> bytes:
    if binding is not None:
        return binding.gpu_nonce() if platform == "nvidia-gpu" else binding.report_data()
    size = NONCE_BYTES if platform == "nvidia-gpu" else 64
    return nonce.ljust(size, b"\0") if len(nonce) <= size else nonce


def _acceptability(bundle: EvidenceBundle, results: list[PlatformResult], section: AttestationSection,
                   policy: str) -> list[Violation]:
    found: list[Violation] = []
    authentic = {r.claims.platform for r in results if r.authentic}
    if bundle.simulated and not section.allow_simulated:
        found.append(Violation("acceptable", f"{_SIMULATED} is refused by policy '{policy}'"))
    for group in section.required:
        if not authentic & set(group) and not ("simulated" in authentic and section.allow_simulated):
            found.append(Violation("acceptable", f"policy '{policy}' requires authentic evidence of "
                                                 f"{' or '.join(group)}; none was given"))
    if not section.allow_debug:
        for result in results:
            if result.claims.debug:
                found.append(Violation("acceptable", f"{result.claims.platform}: the guest is debuggable (the host "
                                                     f"can read its memory) and policy '{policy}' forbids debug"))
    return found
