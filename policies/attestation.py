"""The ``attestation`` section of a policy: which confidential-computing evidence a model load needs.

The defaults fail closed: a confidential VM (SEV-SNP or TDX) is required, debug guests and simulated
evidence are refused, evidence older than five minutes is stale, and a TDX platform must be UpToDate.
Measurement lists left empty do not pin the software; production deployments list theirs.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = [
    "AttestationSection",
    "GpuRules",
    "SnpRules",
    "SnpTcb",
    "TdxRules",
    "TdxTcbStatus",
    "TeePlatform",
]

TeePlatform = Literal["sev-snp", "tdx", "nvidia-gpu"]

TdxTcbStatus = Literal[
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "Revoked",
]
"""Intel's TCB status names, as they appear in TCB info and QE identity collateral."""


def _hex_of(size: int) -> AfterValidator:
    def check(value: str) -> str:
        value = value.lower()
        if not re.fullmatch(rf"[0-9a-f]{{{2 * size}}}", value):
            raise ValueError(f"must be {size} bytes as {2 * size} hex digits")
        return value

    return AfterValidator(check)


Hex32 = Annotated[str, _hex_of(32)]
Hex48 = Annotated[str, _hex_of(48)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SnpTcb(_Strict):
    """Minimum security version numbers of an SEV-SNP platform's TCB (each compared on its own)."""

    bootloader: int = Field(0, ge=0, le=255)
    tee: int = Field(0, ge=0, le=255)
    snp: int = Field(0, ge=0, le=255)
    microcode: int = Field(0, ge=0, le=255)
    fmc: int = Field(0, ge=0, le=255)
    """Turin's firmware-mask component; ignored for Milan and Genoa, which have none."""


class SnpRules(_Strict):
    """What an AMD SEV-SNP guest must look like."""

    measurements: tuple[Hex48, ...] = ()
    """Allowed launch MEASUREMENT values; empty: the guest's software is not pinned."""

    host_data: tuple[Hex32, ...] = ()
    """Allowed HOST_DATA values; empty: any."""

    id_key_digests: tuple[Hex48, ...] = ()
    """Allowed ID_KEY_DIGEST values (the key that signed the ID block); empty: any."""

    author_key_digests: tuple[Hex48, ...] = ()
    """Allowed AUTHOR_KEY_DIGEST values; empty: any."""

    min_tcb: SnpTcb = SnpTcb()
    """Minimum REPORTED_TCB; the VCEK's TCB must equal the reported one in any case."""

    signers: tuple[Literal["vcek", "vlek"], ...] = ("vcek", "vlek")
    """Which endorsement keys may sign the report: the chip's VCEK, or a cloud provider's VLEK."""

    allow_migration_agent: bool = False
    """Whether the guest policy may allow a migration agent to be associated."""

    allow_smt: bool = True
    """Whether simultaneous multithreading may be enabled on the host."""

    max_vmpl: int = Field(3, ge=0, le=3)
    """The highest VMPL the report may come from (0 is the most privileged)."""


class TdxRules(_Strict):
    """What an Intel TDX trust domain must look like."""

    mrtd: tuple[Hex48, ...] = ()
    """Allowed MRTD values (the initial TD image); empty: not pinned."""

    rtmr0: tuple[Hex48, ...] = ()
    """Allowed RTMR0 values (virtual firmware); empty: any."""

    rtmr1: tuple[Hex48, ...] = ()
    """Allowed RTMR1 values (OS loader and kernel); empty: any."""

    rtmr2: tuple[Hex48, ...] = ()
    """Allowed RTMR2 values (kernel command line and initrd); empty: any."""

    rtmr3: tuple[Hex48, ...] = ()
    """Allowed RTMR3 values (runtime extensions); empty: any."""

    mrconfigid: tuple[Hex48, ...] = ()
    """Allowed MRCONFIGID values; empty: any."""

    mrowner: tuple[Hex48, ...] = ()
    """Allowed MROWNER values; empty: any."""

    mrownerconfig: tuple[Hex48, ...] = ()
    """Allowed MROWNERCONFIG values; empty: any."""

    tcb_statuses: tuple[TdxTcbStatus, ...] = ("UpToDate",)
    """Accepted TCB statuses of the platform and the TDX module (the worse of the two is judged)."""

    qe_tcb_statuses: tuple[TdxTcbStatus, ...] = ("UpToDate",)
    """Accepted TCB statuses of the quoting enclave, from the QE identity collateral."""


class GpuRules(_Strict):
    """What an NVIDIA confidential-computing GPU must report."""

    require_rims: bool = False
    """Whether the measurements must match the driver and VBIOS reference integrity manifests."""

    min_driver_version: str | None = None
    """Lowest accepted driver version (e.g. ``550.90.07``); None: any."""

    min_vbios_version: str | None = None
    """Lowest accepted VBIOS version (e.g. ``96.00.9F.00.01``); None: any."""


class AttestationSection(_Strict):
    """TEE evidence a model load needs, bound to the exact model being loaded."""

    required: tuple[tuple[TeePlatform, ...], ...] = (("sev-snp", "tdx"),)
    """Each group must be met by verified evidence of one of its platforms: ``[[sev-snp, tdx], [nvidia-gpu]]``
    asks for a confidential VM and a confidential GPU. An empty list means no TEE is required (say so on purpose)."""

    allow_simulated: bool = False
    """Accept evidence from the simulated provider (signed with a local key, proves nothing): development only."""

    allow_debug: bool = False
    """Accept debuggable guests (SNP policy DEBUG, TDX TD_ATTRIBUTES.DEBUG), whose memory the host can read."""

    max_evidence_age_s: int = Field(300, ge=1)
    """Oldest evidence accepted, from its capture time to the verification time."""

    snp: SnpRules = SnpRules()
    tdx: TdxRules = TdxRules()
    gpu: GpuRules = GpuRules()
