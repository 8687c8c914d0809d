"""The firmware id in the GPU's attestation certificate: the TCG DICE extension, read with a strict DER reader.

The GPU's attestation key (the "FMC LF" leaf) is certified by its boot ROM, DICE style, and the
certificate records a digest of the firmware that holds the key (the FWID). The report's opaque data
repeats the FWID; the two must agree, which ties the signing key to the firmware that was measured.

Two encodings are in use under the DICE arc. Hopper carries, under ``2.23.133.5.4.1``, the RIoT
``CompositeDeviceID`` (SEQUENCE { version INTEGER, deviceIdPublicKey SubjectPublicKeyInfo, fwid FWID }).
Blackwell carries, under ``2.23.133.5.4.1.1``, a ``DiceTcbInfo`` (TCG DICE Attestation Architecture:
a SEQUENCE of IMPLICIT-tagged optional fields, [6] being the FWID list). The first element tells them
apart: an INTEGER, or a context-specific tag. Only DER is accepted: definite, minimal lengths, fields in
tag order. ``cryptography`` does not decode either structure, hence the small reader here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cryptography import x509

from attest.certs import describe
from attest.errors import CertificateError, EvidenceFormatError

__all__ = ["TCB_INFO_OIDS", "DeviceIdentity", "Fwid", "device_identity", "parse_device_identity"]

TCB_INFO_OIDS = (x509.ObjectIdentifier("2.23.133.5.4.1"), x509.ObjectIdentifier("2.23.133.5.4.1.1"))
"""tcg-dice-TcbInfo, and the sub-arc NVIDIA's own verifier reads as its alias."""

_INTEGER, _OCTET_STRING, _OID, _SEQUENCE = 0x02, 0x04, 0x06, 0x30
_CONTEXT, _CONSTRUCTED = 0x80, 0x20
_DEBUG_FLAG = 3  # OperationalFlags bit: the environment is in a debug mode


@dataclass(frozen=True, slots=True)
class Fwid:
    """A firmware digest and the OID of its hash algorithm."""

    hash_algorithm: str
    digest: bytes


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """What the leaf certificate's DICE extension says about the firmware holding the key."""

    layout: Literal["composite-device-id", "tcb-info"]
    fwids: tuple[Fwid, ...]
    vendor: str | None = None
    model: str | None = None
    version: str | None = None
    svn: int | None = None
    flags: bytes | None = None
    """OperationalFlags as the BIT STRING's bytes, bit 0 being the first byte's high bit."""

    @property
    def fwid(self) -> Fwid:
        """The FWID of the layer the certificate is for: the first one (later ones describe other layers)."""
        return self.fwids[0]

    @property
    def debug(self) -> bool:
        return self.flags is not None and _bit(self.flags, _DEBUG_FLAG)


def device_identity(cert: x509.Certificate) -> DeviceIdentity:
    """The DICE identity of ``cert``; CertificateError if it has none, two, or a malformed one."""
    try:
        found = [e for e in cert.extensions if e.oid in TCB_INFO_OIDS]
    except ValueError as exc:
        raise CertificateError(f"certificate '{describe(cert)}' has malformed extensions: {exc}") from None
    if not found:
        raise CertificateError(
            f"certificate '{describe(cert)}' has no DICE FWID extension "
            f"({' or '.join(o.dotted_string for o in TCB_INFO_OIDS)}): it is not a GPU attestation key"
        )
    if len(found) > 1:
        raise CertificateError(f"certificate '{describe(cert)}' has {len(found)} DICE FWID extensions")
    value = found[0].value
    if not isinstance(value, x509.UnrecognizedExtension):  # a cryptography that decodes it itself: not this one
        raise CertificateError(f"certificate '{describe(cert)}': the DICE extension was decoded as {type(value)}")
    try:
        return parse_device_identity(value.value)
    except EvidenceFormatError as exc:
        raise CertificateError(f"certificate '{describe(cert)}' has a malformed DICE extension: {exc.reason}") from None


def parse_device_identity(der: bytes) -> DeviceIdentity:
    """A CompositeDeviceID or DiceTcbInfo from its DER; EvidenceFormatError with the reason otherwise."""
    outer = _items(der, "the DICE extension")
    if len(outer) != 1 or outer[0][0] != _SEQUENCE:
        raise EvidenceFormatError("the DICE extension is not exactly one DER SEQUENCE")
    items = _items(outer[0][1], "the DICE extension")
    if items and items[0][0] == _INTEGER:
        return _composite(items)
    return _tcb_info(items)


def _composite(items: list[tuple[int, bytes]]) -> DeviceIdentity:
    if [tag for tag, _ in items] != [_INTEGER, _SEQUENCE, _SEQUENCE]:
        raise EvidenceFormatError("a CompositeDeviceID is version, public key and FWID")
    _integer(items[0][1], "the CompositeDeviceID version")
    return DeviceIdentity("composite-device-id", (_fwid(items[2][1]),))


def _tcb_info(items: list[tuple[int, bytes]]) -> DeviceIdentity:
    fields: dict[int, bytes] = {}
    last = -1
    for tag, content in items:
        number = tag & 0x1F
        if tag & 0xC0 != _CONTEXT or number <= last:
            raise EvidenceFormatError(f"unexpected element 0x{tag:02x} in a DiceTcbInfo (fields go in tag order)")
        constructed = number in (6, 11)
        if bool(tag & _CONSTRUCTED) != constructed:
            raise EvidenceFormatError(f"DiceTcbInfo field [{number}] has the wrong form")
        fields[number], last = content, number
    if 6 not in fields:
        raise EvidenceFormatError("the DiceTcbInfo has no FWID list ([6])")
    listed = _items(fields[6], "the FWID list")
    if not listed or any(tag != _SEQUENCE for tag, _ in listed):
        raise EvidenceFormatError("the DiceTcbInfo FWID list must be one or more FWID SEQUENCEs")
    fwids = tuple(_fwid(content) for _, content in listed)
    return DeviceIdentity(
        "tcb-info",
        fwids,
        vendor=_text(fields.get(0), "vendor"),
        model=_text(fields.get(1), "model"),
        version=_text(fields.get(2), "version"),
        svn=None if 3 not in fields else _integer(fields[3], "the DiceTcbInfo svn"),
        flags=None if 7 not in fields else _bits(fields[7]),
    )


def _fwid(content: bytes) -> Fwid:
    items = _items(content, "an FWID")
    if [tag for tag, _ in items] != [_OID, _OCTET_STRING]:
        raise EvidenceFormatError("an FWID is a hash algorithm OID and a digest")
    return Fwid(_oid(items[0][1]), items[1][1])


def _items(data: bytes, what: str) -> list[tuple[int, bytes]]:
    """The (tag, content) pairs that exactly fill ``data``."""
    items, pos = [], 0
    while pos < len(data):
        if len(data) - pos < 2:
            raise EvidenceFormatError(f"{what} ends inside a DER header")
        tag, first = data[pos], data[pos + 1]
        if tag & 0x1F == 0x1F:
            raise EvidenceFormatError(f"{what} uses a multi-byte DER tag")
        pos += 2
        if first < 0x80:
            size = first
        else:
            width = first & 0x7F
            if width == 0 or width > 3:
                raise EvidenceFormatError(f"{what} has an indefinite or oversized DER length")
            raw = data[pos : pos + width]
            size, pos = int.from_bytes(raw, "big"), pos + width
            if len(raw) < width or raw[0] == 0 or size < 0x80:
                raise EvidenceFormatError(f"{what} has a truncated or non-minimal DER length")
        if size > len(data) - pos:
            raise EvidenceFormatError(f"{what} is truncated: an element needs {size} bytes, {len(data) - pos} remain")
        items.append((tag, data[pos : pos + size]))
        pos += size
    return items


def _integer(content: bytes, what: str) -> int:
    if not 1 <= len(content) <= 8:
        raise EvidenceFormatError(f"{what} is not a DER INTEGER of 1 to 8 bytes")
    if len(content) > 1 and (content[0], content[1] & 0x80) in ((0x00, 0), (0xFF, 0x80)):
        raise EvidenceFormatError(f"{what} is not minimally encoded")
    return int.from_bytes(content, "big", signed=True)


def _oid(content: bytes) -> str:
    if not content or content[-1] & 0x80:
        raise EvidenceFormatError("an OID is empty or truncated")
    arcs, value, start = [], 0, True
    for byte in content:
        if start and byte == 0x80:
            raise EvidenceFormatError("an OID arc is not minimally encoded")
        value, start = (value << 7) | (byte & 0x7F), not byte & 0x80
        if start:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))


def _text(content: bytes | None, what: str) -> str | None:
    if content is None:
        return None
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        raise EvidenceFormatError(f"the DiceTcbInfo {what} is not UTF-8") from None


def _bits(content: bytes) -> bytes:
    if not content or content[0] > 7 or (len(content) == 1 and content[0]):
        raise EvidenceFormatError("the DiceTcbInfo flags are not a DER BIT STRING")
    if len(content) > 1 and content[-1] & ((1 << content[0]) - 1):
        raise EvidenceFormatError("the DiceTcbInfo flags have unused bits set")
    return content[1:]


def _bit(flags: bytes, number: int) -> bool:
    return number // 8 < len(flags) and bool(flags[number // 8] & (0x80 >> number % 8))
