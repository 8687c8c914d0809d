"""NVIDIA's opaque data in the MEASUREMENTS response: a list of (type u16, length u16, value) fields.

SPDM leaves OpaqueData to the vendor; NVIDIA fills it with what the driver and the GPU firmware report
about themselves (driver and VBIOS versions, chip and board SKUs, the firmware id the device
certificate must also carry...). The field numbers are those of NVIDIA's verifiers (nvtrust
``OpaqueData``, the attestation SDK's ``GpuOpaqueDataType``). Fields whose encoding those verifiers
establish are decoded here; every other field, and every unknown type, is kept as raw hex, never
guessed at. The list is signed with the rest of the response, so a duplicate type is refused: two
readers could otherwise disagree on which copy the GPU meant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from attest.errors import EvidenceFormatError

__all__ = ["FIELD_NAMES", "MAX_OPAQUE_LENGTH", "NVDEC_DISABLED", "OpaqueData", "OpaqueField", "parse_opaque"]

MAX_OPAQUE_LENGTH = 1024
"""SPDM 1.1 caps OpaqueLength at 1024 bytes; a longer one is not a MEASUREMENTS response."""

NVDEC_DISABLED = 0x55
"""NVDEC0_STATUS value of a GPU whose video decoder is off (0xAA: on)."""

FIELD_NAMES: Mapping[int, str] = MappingProxyType(
    {
        1: "cert_issuer_name",
        2: "cert_authority_key_identifier",
        3: "driver_version",
        4: "gpu_info",
        5: "sku",
        6: "vbios_version",
        7: "manufacturer_id",
        8: "tamper_detection",
        9: "smc",
        10: "vpr",
        11: "nvdec0_status",
        12: "msrscnt",
        13: "cprinfo",
        14: "board_id",
        15: "chip_sku",
        16: "chip_sku_mod",
        17: "project",
        18: "project_sku",
        19: "project_sku_mod",
        20: "fwid",
        21: "protected_pcie_status",
        22: "switch_pdi",
        23: "floorswept_ports",
        24: "position_id",
        25: "lock_switch_status",
        32: "gpu_link_conn",
        33: "sys_enable_status",
        34: "opaque_data_version",
        35: "chip_info",
        36: "feature_flag",
        255: "invalid",
    }
)
"""NVIDIA's opaque field types, named as nvtrust names them (without ``OPAQUE_FIELD_ID_``)."""

_DRIVER_VERSION, _VBIOS_VERSION, _NVDEC0_STATUS, _FWID = 3, 6, 11, 20


@dataclass(frozen=True, slots=True)
class OpaqueField:
    """One field as it appears in the response."""

    type: int
    value: bytes

    @property
    def name(self) -> str:
        return FIELD_NAMES.get(self.type, f"type_{self.type}")


@dataclass(frozen=True, slots=True)
class OpaqueData:
    """The fields in their order, and the decoded value of each (raw hex where no decoding is known)."""

    fields: tuple[OpaqueField, ...]
    values: Mapping[str, Any] = field(default_factory=dict)

    def raw(self, type_: int) -> bytes | None:
        return next((f.value for f in self.fields if f.type == type_), None)

    @property
    def driver_version(self) -> str | None:
        return self.values.get("driver_version")

    @property
    def vbios_version(self) -> str | None:
        return self.values.get("vbios_version")

    @property
    def fwid(self) -> bytes | None:
        return self.raw(_FWID)

    @property
    def nvdec0_disabled(self) -> bool:
        """Whether the GPU says its NVDEC0 engine is off (its firmware is then not measured)."""
        return self.raw(_NVDEC0_STATUS) == bytes([NVDEC_DISABLED])


def parse_opaque(data: bytes) -> OpaqueData:
    """The opaque fields of ``data``; EvidenceFormatError for truncation, duplicates or bad encodings."""
    if len(data) > MAX_OPAQUE_LENGTH:
        raise EvidenceFormatError(f"opaque data is {len(data)} bytes; SPDM allows at most {MAX_OPAQUE_LENGTH}")
    fields: list[OpaqueField] = []
    values: dict[str, Any] = {}
    pos = 0
    while pos < len(data):
        if len(data) - pos < 4:
            raise EvidenceFormatError(f"opaque data ends inside a field header at byte {pos}")
        type_ = int.from_bytes(data[pos : pos + 2], "little")
        size = int.from_bytes(data[pos + 2 : pos + 4], "little")
        if size > len(data) - pos - 4:
            raise EvidenceFormatError(
                f"opaque field {type_} at byte {pos} claims {size} bytes, only {len(data) - pos - 4} remain"
            )
        item = OpaqueField(type_, data[pos + 4 : pos + 4 + size])
        if item.name in values:
            raise EvidenceFormatError(f"opaque field {item.name} ({type_}) appears twice")
        values[item.name] = _DECODERS.get(type_, _hex)(item)
        fields.append(item)
        pos += 4 + size
    return OpaqueData(tuple(fields), MappingProxyType(values))


def _hex(item: OpaqueField) -> str:
    return item.value.hex()


def _text(item: OpaqueField) -> str:
    """NUL-terminated ASCII, padded with NULs to the field's size."""
    text, _, padding = item.value.partition(b"\0")
    if padding.strip(b"\0") or not all(0x20 <= b < 0x7F for b in text):
        raise EvidenceFormatError(f"opaque field {item.name} is not NUL-terminated printable ASCII")
    return text.decode("ascii")


def _vbios(item: OpaqueField) -> str:
    """Eight bytes, shown as NVIDIA shows them: bytes 3, 2, 1, 0 and 4 in hex, e.g. ``96.00.9F.00.01``."""
    value = item.value
    if len(value) != 8:
        raise EvidenceFormatError(f"opaque field vbios_version is {len(value)} bytes, not 8")
    return ".".join(f"{value[i]:02X}" for i in (3, 2, 1, 0, 4))


def _nvdec(item: OpaqueField) -> str:
    if len(item.value) != 1:
        raise EvidenceFormatError(f"opaque field nvdec0_status is {len(item.value)} bytes, not 1")
    return {0xAA: "enabled", NVDEC_DISABLED: "disabled"}.get(item.value[0], item.value.hex())


def _counts(item: OpaqueField) -> list[int]:
    """One little-endian u32 per measurement block: how often it was extended."""
    return [int.from_bytes(chunk, "little") for chunk in _chunks(item, 4)]


def _pdis(item: OpaqueField) -> list[str]:
    """The platform device ids of the NVSwitches the GPU is linked to, 8 bytes each."""
    return [chunk.hex() for chunk in _chunks(item, 8)]


def _chunks(item: OpaqueField, width: int) -> list[bytes]:
    if len(item.value) % width:
        raise EvidenceFormatError(f"opaque field {item.name} is {len(item.value)} bytes, not a multiple of {width}")
    return [item.value[i : i + width] for i in range(0, len(item.value), width)]


def _integer(item: OpaqueField) -> int:
    if not 1 <= len(item.value) <= 8:
        raise EvidenceFormatError(f"opaque field {item.name} is {len(item.value)} bytes, not a 1 to 8 byte integer")
    return int.from_bytes(item.value, "little")


_DECODERS: Mapping[int, Callable[[OpaqueField], Any]] = MappingProxyType(
    {
        _DRIVER_VERSION: _text,
        _VBIOS_VERSION: _vbios,
        _NVDEC0_STATUS: _nvdec,
        12: _counts,
        15: _text,
        16: _text,
        17: _text,
        18: _text,
        19: _text,
        22: _pdis,
        34: _integer,
        35: _text,
    }
)
