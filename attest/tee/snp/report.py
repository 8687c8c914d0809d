"""The SEV-SNP ATTESTATION_REPORT (SEV-SNP ABI spec, "ATTESTATION_REPORT Structure"), parsed strictly.

The layout is fixed: 0x4A0 bytes, the signed part 0x000..0x29F, the signature at 0x2A0. Bytes after
0x4A0 (an extended report's certificate table, padding) are not part of the report and are ignored.
Refused as unparsable: a short buffer, a version other than 2, 3 or 5, a signing algorithm other than
ECDSA P-384/SHA-384, reserved SIGNING_KEY values and unknown key-info flag bits (they change what the
signature means). Reserved bytes inside the signed part are only recorded: the firmware signed them,
and refusing a newer firmware's use of them would refuse genuine evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attest.errors import EvidenceFormatError

__all__ = [
    "ECDSA_P384_SHA384",
    "REPORT_SIZE",
    "SIGNED_SIZE",
    "SIGNING_KEY_NONE",
    "SIGNING_KEY_VCEK",
    "SIGNING_KEY_VLEK",
    "SUPPORTED_VERSIONS",
    "GuestPolicy",
    "PlatformInfo",
    "SnpReport",
    "parse_report",
]

REPORT_SIZE = 0x4A0
SIGNED_SIZE = 0x2A0
SUPPORTED_VERSIONS = (2, 3, 5)
ECDSA_P384_SHA384 = 1
SIGNING_KEY_VCEK, SIGNING_KEY_VLEK, SIGNING_KEY_NONE = 0, 1, 7
_COMPONENT = 72  # bytes of each of R and S in the AMD signature format, little-endian, zero-extended

_POLICY_BITS = {
    "smt": 16,
    "migrate_ma": 18,
    "debug": 19,
    "single_socket": 20,
    "cxl_allow": 21,
    "mem_aes_256_xts": 22,
    "rapl_dis": 23,
    "ciphertext_hiding_dram": 24,
    "page_swap_disable": 25,
}
_POLICY_KNOWN = 0xFFFF | (1 << 17) | sum(1 << b for b in _POLICY_BITS.values())

_PLATFORM_BITS = {
    "smt_enabled": 0,
    "tsme_enabled": 1,
    "ecc_enabled": 2,
    "rapl_disabled": 3,
    "ciphertext_hiding_dram_enabled": 4,
    "alias_check_complete": 5,
    "tio_enabled": 7,
}
_PLATFORM_KNOWN = sum(1 << b for b in _PLATFORM_BITS.values())


@dataclass(frozen=True, slots=True)
class GuestPolicy:
    """The guest policy the owner launched with; the firmware enforces it for the guest's lifetime."""

    raw: int

    def bit(self, name: str) -> bool:
        return bool(self.raw >> _POLICY_BITS[name] & 1)

    @property
    def debug(self) -> bool:
        return self.bit("debug")

    @property
    def migrate_ma(self) -> bool:
        return self.bit("migrate_ma")

    @property
    def smt(self) -> bool:
        return self.bit("smt")

    def to_json(self) -> dict[str, Any]:
        decoded: dict[str, Any] = {"raw": f"{self.raw:#x}", "abi_major": self.raw >> 8 & 0xFF}
        decoded["abi_minor"] = self.raw & 0xFF
        decoded |= {name: self.bit(name) for name in _POLICY_BITS}
        decoded["reserved_bit17_set"] = bool(self.raw >> 17 & 1)  # the ABI requires it; firmware refuses 0
        decoded["unknown_bits"] = f"{self.raw & ~_POLICY_KNOWN:#x}"
        return decoded


@dataclass(frozen=True, slots=True)
class PlatformInfo:
    """What the host platform had enabled when the report was made (SMT, TSME, ciphertext hiding...)."""

    raw: int

    def bit(self, name: str) -> bool:
        return bool(self.raw >> _PLATFORM_BITS[name] & 1)

    @property
    def smt_enabled(self) -> bool:
        return self.bit("smt_enabled")

    def to_json(self) -> dict[str, Any]:
        decoded: dict[str, Any] = {"raw": f"{self.raw:#x}"}
        decoded |= {name: self.bit(name) for name in _PLATFORM_BITS}
        decoded["unknown_bits"] = f"{self.raw & ~_PLATFORM_KNOWN:#x}"
        return decoded


@dataclass(frozen=True, slots=True)
class SnpReport:
    """One parsed report; TCB fields stay raw because their packing depends on the product."""

    raw: bytes
    """The 0x4A0 report bytes (trailing bytes of the input removed)."""
    trailing: int
    """How many bytes followed the report in the input."""
    version: int
    guest_svn: int
    policy: GuestPolicy
    family_id: bytes
    image_id: bytes
    vmpl: int
    signature_algo: int
    current_tcb: int
    platform_info: PlatformInfo
    author_key_en: bool
    mask_chip_key: bool
    signing_key: int
    """0 VCEK, 1 VLEK, 7 none (the report is unsigned)."""
    report_data: bytes
    measurement: bytes
    host_data: bytes
    id_key_digest: bytes
    author_key_digest: bytes
    report_id: bytes
    report_id_ma: bytes
    reported_tcb: int
    cpuid: tuple[int, int, int] | None
    """(family, model, stepping) for v3+; None in v2, which has no such field."""
    chip_id: bytes
    committed_tcb: int
    current_version: tuple[int, int, int]
    """Firmware (major, minor, build) running now."""
    committed_version: tuple[int, int, int]
    launch_tcb: int
    launch_mit_vector: int | None
    current_mit_vector: int | None
    signature: bytes
    """The 0x200-byte signature field: R, S, then reserved bytes outside the signed part."""
    reserved_nonzero: tuple[str, ...]
    """Reserved ranges of the signed part that are not zero, as ``0xLO-0xHI`` (informational)."""

    @property
    def signed(self) -> bytes:
        """The bytes the firmware signed: 0x000..0x29F."""
        return self.raw[:SIGNED_SIZE]

    @property
    def signature_r(self) -> int:
        return int.from_bytes(self.signature[:_COMPONENT], "little")

    @property
    def signature_s(self) -> int:
        return int.from_bytes(self.signature[_COMPONENT : 2 * _COMPONENT], "little")

    @property
    def signature_padding(self) -> bytes:
        """The unsigned remainder of the signature field after R and S; AMD firmware writes zeros."""
        return self.signature[2 * _COMPONENT :]


def parse_report(data: bytes) -> SnpReport:
    """The report at the start of ``data``; EvidenceFormatError saying what is wrong otherwise."""
    if len(data) < REPORT_SIZE:
        raise EvidenceFormatError(
            f"the SEV-SNP report is truncated: {len(data)} bytes, a report is {REPORT_SIZE} (0x4A0)"
        )
    raw = bytes(data[:REPORT_SIZE])
    version = _u32(raw, 0x00)
    if version not in SUPPORTED_VERSIONS:
        raise EvidenceFormatError(
            f"SEV-SNP report version {version} is not supported (supported: {', '.join(map(str, SUPPORTED_VERSIONS))})"
        )
    key_info = _u32(raw, 0x48)
    if key_info >> 5:
        raise EvidenceFormatError(f"the report's key-info field at 0x48 has unknown bits set: {key_info:#x}")
    signing_key = key_info >> 2 & 0x7
    if signing_key not in (SIGNING_KEY_VCEK, SIGNING_KEY_VLEK, SIGNING_KEY_NONE):
        raise EvidenceFormatError(f"SIGNING_KEY {signing_key} is reserved (0 VCEK, 1 VLEK, 7 none)")
    algo = _u32(raw, 0x34)
    if algo != ECDSA_P384_SHA384 and signing_key != SIGNING_KEY_NONE:
        raise EvidenceFormatError(f"signature algorithm {algo} is not ECDSA P-384 with SHA-384 (1)")
    v3 = version >= 3
    v5 = version >= 5
    reserved = [(0x4C, 0x50), (0x18B if v3 else 0x188, 0x1A0), (0x1EB, 0x1EC), (0x1EF, 0x1F0)]
    reserved.append((0x208 if v5 else 0x1F8, SIGNED_SIZE))
    return SnpReport(
        raw=raw,
        trailing=len(data) - REPORT_SIZE,
        version=version,
        guest_svn=_u32(raw, 0x04),
        policy=GuestPolicy(_u64(raw, 0x08)),
        family_id=raw[0x10:0x20],
        image_id=raw[0x20:0x30],
        vmpl=_u32(raw, 0x30),
        signature_algo=algo,
        current_tcb=_u64(raw, 0x38),
        platform_info=PlatformInfo(_u64(raw, 0x40)),
        author_key_en=bool(key_info & 1),
        mask_chip_key=bool(key_info & 2),
        signing_key=signing_key,
        report_data=raw[0x50:0x90],
        measurement=raw[0x90:0xC0],
        host_data=raw[0xC0:0xE0],
        id_key_digest=raw[0xE0:0x110],
        author_key_digest=raw[0x110:0x140],
        report_id=raw[0x140:0x160],
        report_id_ma=raw[0x160:0x180],
        reported_tcb=_u64(raw, 0x180),
        cpuid=(raw[0x188], raw[0x189], raw[0x18A]) if v3 else None,
        chip_id=raw[0x1A0:0x1E0],
        committed_tcb=_u64(raw, 0x1E0),
        current_version=(raw[0x1EA], raw[0x1E9], raw[0x1E8]),
        committed_version=(raw[0x1EE], raw[0x1ED], raw[0x1EC]),
        launch_tcb=_u64(raw, 0x1F0),
        launch_mit_vector=_u64(raw, 0x1F8) if v5 else None,
        current_mit_vector=_u64(raw, 0x200) if v5 else None,
        signature=raw[SIGNED_SIZE:REPORT_SIZE],
        reserved_nonzero=tuple(f"{lo:#x}-{hi - 1:#x}" for lo, hi in reserved if any(raw[lo:hi])),
    )


def _u32(raw: bytes, offset: int) -> int:
    return int.from_bytes(raw[offset : offset + 4], "little")


def _u64(raw: bytes, offset: int) -> int:
    return int.from_bytes(raw[offset : offset + 8], "little")
