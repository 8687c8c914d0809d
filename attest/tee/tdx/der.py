"""A small strict DER reader, for the parts of Intel's certificates that ``cryptography`` leaves raw.

The SGX extension of a PCK certificate is opaque to ``cryptography``, and a certificate's serial number
must be checked before ``cryptography`` sees it (it warns, rather than fails, on a negative one). Only
what those two need is read: definite, minimal lengths, low tag numbers, and every length bounded by
the bytes that are there. Anything else is an EvidenceFormatError naming ``what`` was being read.
"""

from __future__ import annotations

from attest.errors import EvidenceFormatError

__all__ = [
    "BOOLEAN",
    "ENUMERATED",
    "INTEGER",
    "OCTET_STRING",
    "OID",
    "SEQUENCE",
    "Tlv",
    "elements",
    "read_boolean",
    "read_integer",
    "read_oid",
    "single",
]

BOOLEAN = 0x01
INTEGER = 0x02
OCTET_STRING = 0x04
OID = 0x06
ENUMERATED = 0x0A
SEQUENCE = 0x30

_MAX_OID_BYTES = 64

Tlv = tuple[int, bytes]
"""A tag and its contents."""


def _read(data: bytes, offset: int, what: str) -> tuple[int, bytes, int]:
    """The tag, contents and end offset of the element that starts at ``offset``."""
    if len(data) - offset < 2:
        raise EvidenceFormatError(f"{what}: DER element truncated at offset {offset}")
    tag, first = data[offset], data[offset + 1]
    if tag & 0x1F == 0x1F:
        raise EvidenceFormatError(f"{what}: DER high tag numbers are not used here (offset {offset})")
    start = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise EvidenceFormatError(f"{what}: DER length of {count} bytes at offset {offset} is not allowed")
        if len(data) - start < count:
            raise EvidenceFormatError(f"{what}: DER length truncated at offset {offset}")
        length = int.from_bytes(data[start : start + count], "big")
        if length < 0x80 or data[start] == 0:
            raise EvidenceFormatError(f"{what}: DER length at offset {offset} is not minimally encoded")
        start += count
    if len(data) - start < length:
        raise EvidenceFormatError(
            f"{what}: DER element at offset {offset} declares {length} bytes, only {len(data) - start} remain"
        )
    return tag, data[start : start + length], start + length


def single(data: bytes, what: str) -> Tlv:
    """The one element that ``data`` consists of, with nothing after it."""
    tag, contents, end = _read(data, 0, what)
    if end != len(data):
        raise EvidenceFormatError(f"{what}: {len(data) - end} bytes follow the DER element")
    return tag, contents


def elements(contents: bytes, what: str) -> list[Tlv]:
    """The elements that exactly fill a constructed element's contents."""
    found: list[Tlv] = []
    offset = 0
    while offset < len(contents):
        tag, value, offset = _read(contents, offset, what)
        found.append((tag, value))
    return found


def read_integer(contents: bytes, what: str) -> int:
    """A DER INTEGER's value (two's complement, minimally encoded)."""
    if not contents:
        raise EvidenceFormatError(f"{what}: empty DER INTEGER")
    if len(contents) > 1 and (contents[0], contents[1] & 0x80) in ((0x00, 0), (0xFF, 0x80)):
        raise EvidenceFormatError(f"{what}: DER INTEGER is not minimally encoded")
    return int.from_bytes(contents, "big", signed=True)


def read_boolean(contents: bytes, what: str) -> bool:
    if contents not in (b"\x00", b"\xff"):
        raise EvidenceFormatError(f"{what}: DER BOOLEAN must be 00 or FF, not {contents.hex() or 'empty'}")
    return contents == b"\xff"


def read_oid(contents: bytes, what: str) -> str:
    """An OBJECT IDENTIFIER in dotted form."""
    if not contents or contents[-1] & 0x80:
        raise EvidenceFormatError(f"{what}: truncated OBJECT IDENTIFIER")
    if len(contents) > _MAX_OID_BYTES:
        raise EvidenceFormatError(f"{what}: OBJECT IDENTIFIER of {len(contents)} bytes is longer than any used here")
    arcs: list[int] = []
    value, starts_arc = 0, True
    for byte in contents:
        if starts_arc and byte == 0x80:
            raise EvidenceFormatError(f"{what}: OBJECT IDENTIFIER arc is not minimally encoded")
        value = (value << 7) | (byte & 0x7F)
        starts_arc = not byte & 0x80
        if starts_arc:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))
