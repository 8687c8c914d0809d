"""What one platform's evidence says, and what is wrong with it, as the platform verifiers report it.

A verifier parses the evidence (``EvidenceFormatError`` when it cannot), then checks it and returns a
``PlatformResult``: the claims read from the evidence and every violation found, each tagged with the
check it belongs to. Claims are reported even when the evidence is not authentic, so that a reviewer
sees what a forged report claimed; only an empty ``authentic`` list makes them trustworthy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Check", "Platform", "PlatformClaims", "PlatformResult", "Violation"]

Platform = Literal["sev-snp", "tdx", "nvidia-gpu", "simulated"]

Check = Literal["authentic", "fresh", "acceptable"]
"""authentic: signatures, certificate chains and the vendor's own consistency rules (e.g. VCEK TCB equals
REPORTED_TCB); fresh: nonce and report-data binding, evidence age, collateral and CRL dates; acceptable:
the policy (debug, measurements, TCB minimums and statuses, signer kinds)."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One reason to refuse the evidence."""

    check: Check
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class PlatformClaims:
    """The fields of one piece of evidence that a policy or a reviewer looks at."""

    platform: Platform
    format: str
    """The evidence format and version, e.g. ``sev-snp-report-v2``, ``tdx-quote-v4``, ``nvidia-spdm-1.1``."""

    evidence_sha256: str
    """SHA-256 of the exact evidence bytes that were verified (the report, quote or SPDM transcript)."""

    report_data: bytes
    """The caller-chosen binding: SNP REPORT_DATA and TDX REPORTDATA (64 bytes), the SPDM nonce (32 bytes)."""

    debug: bool
    """Whether the host can read or change the guest's state (SNP policy DEBUG, TDX TD_ATTRIBUTES.DEBUG)."""

    measurements: Mapping[str, str] = field(default_factory=dict)
    """Name -> hex: ``measurement`` (SNP), ``mrtd`` and ``rtmr0``..``rtmr3`` (TDX), measurement block index (GPU)."""

    tcb: Mapping[str, Any] = field(default_factory=dict)
    """The platform's TCB as the evidence states it, and its evaluated status where collateral gives one."""

    signer: str | None = None
    """The kind of key that signed the evidence: ``vcek``, ``vlek``, ``pck``, ``nvidia-device``, ``simulated``."""

    chain: tuple[str, ...] = ()
    """Subjects of the verified certificate path, leaf first, root last."""

    details: Mapping[str, Any] = field(default_factory=dict)
    """Everything else worth recording (guest policy bits, VMPL, CHIP_ID, host data, driver version...)."""

    @property
    def simulated(self) -> bool:
        return self.platform == "simulated"

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "format": self.format,
            "simulated": self.simulated,
            "evidence_sha256": self.evidence_sha256,
            "report_data": self.report_data.hex(),
            "debug": self.debug,
            "measurements": dict(self.measurements),
            "tcb": dict(self.tcb),
            "signer": self.signer,
            "chain": list(self.chain),
            "details": dict(self.details),
        }


@dataclass(frozen=True, slots=True)
class PlatformResult:
    """A platform verifier's outcome: the claims and every violation it found."""

    claims: PlatformClaims
    violations: tuple[Violation, ...] = ()

    def failed(self, check: Check) -> tuple[str, ...]:
        return tuple(v.reason for v in self.violations if v.check == check)

    @property
    def authentic(self) -> bool:
        return not self.failed("authentic")
