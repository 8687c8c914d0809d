"""The GPU attestation report: an SPDM 1.1 GET_MEASUREMENTS request followed by its signed MEASUREMENTS response.

DMTF DSP0274 1.1 defines both messages. The requester's nonce is in the request, so the pair (the L1/L2
transcript) is what the GPU signs: ECDSA over request || response up to, not including, the signature.
NVIDIA's driver returns exactly that pair (``nvmlDeviceGetConfComputeGpuAttestationReport``), and nvtrust
stores it as hex text; both forms are accepted.

Every length is bounded before it is used and the messages must fill the input exactly. The signature
has no length field of its own (its size follows from the negotiated algorithm, ECDSA P-384 on Hopper and
Blackwell), so it is located structurally, after the opaque data, and anything after it would be
unsigned: trailing bytes are refused rather than ignored.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from attest.errors import EvidenceFormatError
from attest.tee.nvidia.opaque import MAX_OPAQUE_LENGTH, OpaqueData, parse_opaque

__all__ = [
    "MAX_REPORT_BYTES",
    "NONCE_SIZE",
    "REQUEST_SIZE",
    "SIGNATURE_SIZE",
    "MeasurementBlock",
    "SpdmReport",
    "decode_report",
    "parse_report",
]

SPDM_VERSION = 0x11
GET_MEASUREMENTS, MEASUREMENTS = 0xE0, 0x60
NONCE_SIZE = 32
REQUEST_SIZE = 4 + NONCE_SIZE + 1
"""Header (version, code, attributes, operation), nonce, slot id."""
SIGNATURE_SIZE = 96
"""ECDSA P-384 as r || s, 48 bytes each."""
MAX_REPORT_BYTES = 1 << 20
"""A report of 255 SHA-512 blocks is under 20 KiB; a megabyte leaves room for raw bitstream blocks."""

_SIGNATURE_REQUESTED = 0x01
_ALL_MEASUREMENTS = 0xFF
_DMTF_SPECIFICATION = 0x01
_RAW_BITSTREAM = 0x80
_HEX_TEXT = frozenset((string.hexdigits + string.whitespace).encode())


@dataclass(frozen=True, slots=True)
class MeasurementBlock:
    """One measurement block in the DMTF format: its index, value type and value."""

    index: int
    value_type: int
    """DMTFSpecMeasurementValueType: bits 0-6 say what was measured, bit 7 set means a raw bitstream, not a digest."""
    value: bytes

    @property
    def is_digest(self) -> bool:
        return not self.value_type & _RAW_BITSTREAM


@dataclass(frozen=True, slots=True)
class SpdmReport:
    """The parsed transcript; ``signed`` is the exact byte string the signature covers."""

    transcript: bytes
    nonce: bytes
    """The requester's nonce: the verifier's challenge, which binds the report to one appraisal."""
    requested_index: int
    """GET_MEASUREMENTS operation: 0xFF asks for every block, 1-0xFE for one."""
    slot: int
    blocks: tuple[MeasurementBlock, ...]
    responder_nonce: bytes
    opaque: OpaqueData
    signature: bytes

    @property
    def signed(self) -> bytes:
        return self.transcript[: len(self.transcript) - SIGNATURE_SIZE]

    @property
    def measurements(self) -> Mapping[int, bytes]:
        return MappingProxyType({b.index: b.value for b in self.blocks})


def decode_report(data: bytes) -> bytes:
    """The binary transcript from raw bytes or from nvtrust's hex text (any whitespace tolerated).

    Input made only of hex digits and whitespace is text; anything else is taken as binary. A binary
    transcript starts with the SPDM version byte 0x11, which is neither, so the two cannot be confused.
    """
    if len(data) > 4 * MAX_REPORT_BYTES:
        raise EvidenceFormatError(f"the report is {len(data)} bytes, more than any GPU report")
    binary = data
    if data and set(data) <= _HEX_TEXT:
        text = b"".join(data.split())
        if len(text) % 2:
            raise EvidenceFormatError(f"the report's hex text has an odd number of digits ({len(text)})")
        binary = bytes.fromhex(text.decode("ascii"))
    if len(binary) > MAX_REPORT_BYTES:
        raise EvidenceFormatError(f"the report is {len(binary)} bytes, more than {MAX_REPORT_BYTES}")
    return binary


def parse_report(data: bytes) -> SpdmReport:
    """The request and response in ``data``; EvidenceFormatError with the offending field otherwise."""
    transcript = decode_report(data)
    reader = _Reader(transcript)
    version, code, attributes, operation = reader.take(4, "the GET_MEASUREMENTS header")
    if (version, code) != (SPDM_VERSION, GET_MEASUREMENTS):
        raise EvidenceFormatError(
            f"the report does not start with an SPDM 1.1 GET_MEASUREMENTS request "
            f"(version 0x{version:02x}, code 0x{code:02x})"
        )
    if not attributes & _SIGNATURE_REQUESTED:
        raise EvidenceFormatError("the request did not ask for a signature, so the measurements are unsigned")
    if operation == 0:
        raise EvidenceFormatError("the request asked only for the number of measurements, not for any")
    nonce = reader.take(NONCE_SIZE, "the request nonce")
    slot = reader.take(1, "the request slot id")[0] & 0x0F

    version, code, _, response_slot, count = reader.take(5, "the MEASUREMENTS header")
    if (version, code) != (SPDM_VERSION, MEASUREMENTS):
        raise EvidenceFormatError(
            f"the request is not followed by an SPDM 1.1 MEASUREMENTS response "
            f"(version 0x{version:02x}, code 0x{code:02x})"
        )
    if response_slot & 0x0F != slot:
        raise EvidenceFormatError(f"the response is for slot {response_slot & 0x0F}, the request asked slot {slot}")
    record = reader.take(int.from_bytes(reader.take(3, "the measurement record length"), "little"), "the record")
    blocks = _parse_record(record, count, operation)
    responder_nonce = reader.take(NONCE_SIZE, "the response nonce")
    opaque_length = int.from_bytes(reader.take(2, "the opaque data length"), "little")
    if opaque_length > MAX_OPAQUE_LENGTH:
        raise EvidenceFormatError(f"the opaque data length is {opaque_length}; SPDM allows at most {MAX_OPAQUE_LENGTH}")
    opaque = parse_opaque(reader.take(opaque_length, "the opaque data"))
    signature = reader.take(SIGNATURE_SIZE, "the signature")
    if reader.left:
        raise EvidenceFormatError(f"{reader.left} unsigned bytes follow the signature")
    return SpdmReport(transcript, nonce, operation, slot, blocks, responder_nonce, opaque, signature)


def _parse_record(record: bytes, count: int, operation: int) -> tuple[MeasurementBlock, ...]:
    reader = _Reader(record, "the measurement record")
    blocks: dict[int, MeasurementBlock] = {}
    for _ in range(count):
        index, specification = reader.take(2, "a measurement block header")
        size = int.from_bytes(reader.take(2, f"the size of measurement block {index}"), "little")
        body = _Reader(reader.take(size, f"measurement block {index}"), f"measurement block {index}")
        if index in (0, 0xFF):
            raise EvidenceFormatError(f"measurement block index {index} is reserved")
        if index in blocks:
            raise EvidenceFormatError(f"measurement block {index} appears twice")
        if specification != _DMTF_SPECIFICATION:
            raise EvidenceFormatError(f"measurement block {index} is not in the DMTF format (0x{specification:02x})")
        value_type = body.take(1, "the value type")[0]
        value = body.take(int.from_bytes(body.take(2, "the value size"), "little"), "the value")
        if body.left:
            raise EvidenceFormatError(f"measurement block {index} has {body.left} bytes after its value")
        blocks[index] = MeasurementBlock(index, value_type, value)
    if reader.left:
        raise EvidenceFormatError(f"the measurement record has {reader.left} bytes after its {count} blocks")
    if operation != _ALL_MEASUREMENTS and set(blocks) != {operation}:
        raise EvidenceFormatError(f"the request asked for block {operation}, the response carries {sorted(blocks)}")
    return tuple(blocks.values())


class _Reader:
    """Consumes a byte string front to back; running out is a truncation, named by what was being read."""

    def __init__(self, data: bytes, where: str = "the report") -> None:
        self._data, self._pos, self._where = data, 0, where

    @property
    def left(self) -> int:
        return len(self._data) - self._pos

    def take(self, size: int, what: str) -> bytes:
        if size > self.left:
            raise EvidenceFormatError(f"{self._where} is truncated: {what} needs {size} bytes, {self.left} remain")
        self._pos += size
        return self._data[self._pos - size : self._pos]
