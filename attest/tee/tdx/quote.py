"""Intel TDX DCAP quotes, versions 4 and 5, read strictly (Intel TDX DCAP Quote Generation Library API, A.3-A.4).

A quote is a header, a TD report body, and ECDSA signature data whose certification data nests the QE
report, its signature, the QE authentication data and the PCK certificate chain. Every declared length
is checked against the bytes that are there, and nested data must fill its declared size exactly;
only bytes after the whole quote are ignored (quotes are often delivered zero-padded). A TDREPORT is
refused: it is MACed with a key of the CPU that made it, so nobody else can verify it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cryptography import x509

from attest.errors import EvidenceFormatError
from attest.tee.tdx.pem import pem_chain

__all__ = [
    "INTEL_QE_VENDOR_ID",
    "TDREPORT_SIZE",
    "QeReport",
    "TdQuoteBody",
    "TdxQuote",
    "decode_td_attributes",
    "parse_quote",
]

INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
"""The QE vendor ID of Intel's quoting enclave."""

TDREPORT_SIZE = 1024
"""TDREPORT_STRUCT: REPORTMACSTRUCT (256, starting with REPORTTYPE.TYPE 0x81), TEE_TCB_INFO, TDINFO."""

_HEADER_SIZE = 48
_ECDSA_P256 = 2
_TEE_TDX = 0x81
_BODY_SIZES = {2: 584, 3: 648}  # v5 body types: TDX 1.0 TD report, TDX 1.5 TD report
_QE_REPORT_SIZE = 384
_CERT_PCK_CHAIN = 5
_CERT_QE_REPORT = 6
_CERT_TYPE_NAMES = {
    1: "a plain-text PPID",
    2: "an RSA-2048 encrypted PPID",
    3: "an RSA-3072 encrypted PPID",
    4: "a PCK leaf certificate alone",
    5: "a PCK certificate chain",
    6: "QE report certification data",
    7: "a platform manifest",
}

_TD_ATTRIBUTE_BITS = {"debug": 0, "sept_ve_disable": 28, "migratable": 29, "pks": 30, "kl": 31, "perfmon": 63}


@dataclass(frozen=True, slots=True)
class TdQuoteBody:
    """The TD report body: what the TDX module measured about itself and the trust domain."""

    tee_tcb_svn: bytes
    mrseam: bytes
    mrsignerseam: bytes
    seam_attributes: bytes
    td_attributes: int
    """TDATTRIBUTES as a little-endian integer; bit 0 is DEBUG."""
    xfam: bytes
    mrtd: bytes
    mrconfigid: bytes
    mrowner: bytes
    mrownerconfig: bytes
    rtmrs: tuple[bytes, bytes, bytes, bytes]
    report_data: bytes
    tee_tcb_svn2: bytes | None = None
    """TDX 1.5 bodies only: the SVN of the TDX module after a TD-preserving update."""
    mrservicetd: bytes | None = None
    """TDX 1.5 bodies only: the measurement of the service TDs bound to this TD."""

    @property
    def debug(self) -> bool:
        return bool(self.td_attributes & 1)


@dataclass(frozen=True, slots=True)
class QeReport:
    """The quoting enclave's SGX report body, signed by the PCK key."""

    raw: bytes
    cpusvn: bytes
    miscselect: int
    attributes: bytes
    mrenclave: bytes
    mrsigner: bytes
    isvprodid: int
    isvsvn: int
    report_data: bytes


@dataclass(frozen=True, slots=True)
class TdxQuote:
    """A parsed quote; ``signed`` is the exact byte range the attestation key signed."""

    version: int
    body_type: int
    """2: TDX 1.0 body, 3: TDX 1.5 body (version 4 quotes always carry a TDX 1.0 body)."""
    qe_vendor_id: bytes
    user_data: bytes
    body: TdQuoteBody
    signed: bytes
    signature: bytes
    attestation_key: bytes
    qe_report: QeReport
    qe_report_signature: bytes
    qe_auth_data: bytes
    pck_chain: tuple[x509.Certificate, ...]
    """Leaf (the PCK certificate) first, as the quoting enclave wrote it."""
    size: int
    """Bytes of the quote proper; the evidence may carry padding after them."""


class _Reader:
    """A cursor that refuses to read past the end, naming the field it was reading."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.what, self.offset = data, what, 0

    def take(self, size: int, field: str) -> bytes:
        left = len(self.data) - self.offset
        if size > left:
            raise EvidenceFormatError(
                f"{self.what} is truncated: {field} needs {size} bytes at offset {self.offset}, {left} remain"
            )
        self.offset += size
        return self.data[self.offset - size : self.offset]

    def u16(self, field: str) -> int:
        return int.from_bytes(self.take(2, field), "little")

    def u32(self, field: str) -> int:
        return int.from_bytes(self.take(4, field), "little")

    def done(self) -> None:
        if self.offset != len(self.data):
            raise EvidenceFormatError(
                f"{self.what} has {len(self.data) - self.offset} bytes after its last field (offset {self.offset})"
            )


def parse_quote(data: bytes) -> TdxQuote:
    """The quote in ``data``; EvidenceFormatError with the reason when it is not a TDX v4/v5 quote."""
    _refuse_tdreport(data)
    quote = _Reader(data, "TDX quote")
    version, key_type, tee_type = struct.unpack("<HHI", quote.take(8, "the header"))
    if version not in (4, 5):
        raise EvidenceFormatError(f"TDX quote version {version} is not supported (only 4 and 5)")
    if tee_type != _TEE_TDX:
        raise EvidenceFormatError(f"quote TEE type {tee_type:#x} is not TDX (0x81)")
    if key_type != _ECDSA_P256:
        raise EvidenceFormatError(f"quote attestation key type {key_type} is not supported (only 2, ECDSA P-256)")
    quote.take(4, "the header's reserved bytes")
    qe_vendor_id, user_data = quote.take(16, "QE vendor ID"), quote.take(20, "user data")
    body_type, body_size = 2, _BODY_SIZES[2]
    if version == 5:
        body_type, body_size = quote.u16("the body type"), quote.u32("the body size")
        if body_type not in _BODY_SIZES:
            raise EvidenceFormatError(f"TDX quote v5 body type {body_type} is not supported (only 2 and 3)")
        if body_size != _BODY_SIZES[body_type]:
            raise EvidenceFormatError(
                f"TDX quote v5 body type {body_type} must be {_BODY_SIZES[body_type]} bytes, not {body_size}"
            )
    body = _body(quote.take(body_size, "the TD report body"))
    signed = data[: quote.offset]
    signature_data = _Reader(quote.take(quote.u32("the signature data size"), "the signature data"), "signature data")
    signature, attestation_key = (
        signature_data.take(64, "the quote signature"),
        signature_data.take(64, "the attestation key"),
    )
    qe_data = _Reader(_certification_data(signature_data, _CERT_QE_REPORT), "QE report certification data")
    qe_report = _qe_report(qe_data.take(_QE_REPORT_SIZE, "the QE report"))
    qe_report_signature = qe_data.take(64, "the QE report signature")
    qe_auth_data = qe_data.take(qe_data.u16("the QE authentication data size"), "the QE authentication data")
    chain = pem_chain(_certification_data(qe_data, _CERT_PCK_CHAIN), "the PCK certificate chain")
    return TdxQuote(
        version=version,
        body_type=body_type,
        qe_vendor_id=qe_vendor_id,
        user_data=user_data,
        body=body,
        signed=signed,
        signature=signature,
        attestation_key=attestation_key,
        qe_report=qe_report,
        qe_report_signature=qe_report_signature,
        qe_auth_data=qe_auth_data,
        pck_chain=chain,
        size=quote.offset,
    )


def decode_td_attributes(value: int) -> dict[str, object]:
    """TDATTRIBUTES by name (TDX module ABI), with any other set bits listed so none goes unseen."""
    named = {name: bool(value >> bit & 1) for name, bit in _TD_ATTRIBUTE_BITS.items()}
    known = sum(1 << bit for bit in _TD_ATTRIBUTE_BITS.values())
    other = [bit for bit in range(64) if (value & ~known) >> bit & 1]
    return {"hex": value.to_bytes(8, "little").hex(), **named, "other_bits": other}


def _refuse_tdreport(data: bytes) -> None:
    # REPORTTYPE.TYPE 0x81 with SUBTYPE 0 reads as quote version 129, which no quote has. A 1024-byte
    # input that is not a quote is refused the same way: that is the size of TDREPORT_STRUCT.
    is_report_type = len(data) >= 2 and data[0] == _TEE_TDX and data[1] == 0
    not_a_quote = len(data) == TDREPORT_SIZE and int.from_bytes(data[:2], "little") not in (4, 5)
    if is_report_type or not_a_quote:
        raise EvidenceFormatError(
            "the evidence is a TDREPORT, not a quote: a TDREPORT is MACed with a key only the CPU that made it "
            "holds, so it cannot be verified offline; ask the quoting enclave (or configfs-tsm) for a quote"
        )


def _body(raw: bytes) -> TdQuoteBody:
    fields = _Reader(raw, "the TD report body")
    take = fields.take
    return TdQuoteBody(
        tee_tcb_svn=take(16, "TEE_TCB_SVN"),
        mrseam=take(48, "MRSEAM"),
        mrsignerseam=take(48, "MRSIGNERSEAM"),
        seam_attributes=take(8, "SEAMATTRIBUTES"),
        td_attributes=int.from_bytes(take(8, "TDATTRIBUTES"), "little"),
        xfam=take(8, "XFAM"),
        mrtd=take(48, "MRTD"),
        mrconfigid=take(48, "MRCONFIGID"),
        mrowner=take(48, "MROWNER"),
        mrownerconfig=take(48, "MROWNERCONFIG"),
        rtmrs=(take(48, "RTMR0"), take(48, "RTMR1"), take(48, "RTMR2"), take(48, "RTMR3")),
        report_data=take(64, "REPORTDATA"),
        tee_tcb_svn2=take(16, "TEE_TCB_SVN2") if len(raw) > 584 else None,
        mrservicetd=take(48, "MRSERVICETD") if len(raw) > 584 else None,
    )


def _qe_report(raw: bytes) -> QeReport:
    return QeReport(
        raw=raw,
        cpusvn=raw[0:16],
        miscselect=int.from_bytes(raw[16:20], "little"),
        attributes=raw[48:64],
        mrenclave=raw[64:96],
        mrsigner=raw[128:160],
        isvprodid=int.from_bytes(raw[256:258], "little"),
        isvsvn=int.from_bytes(raw[258:260], "little"),
        report_data=raw[320:384],
    )


def _certification_data(data: _Reader, expected: int) -> bytes:
    """The certification data of type ``expected`` that fills the rest of ``data`` exactly."""
    kind, size = data.u16("the certification data type"), data.u32("the certification data size")
    if kind != expected:
        carries = _CERT_TYPE_NAMES.get(kind, "an unknown kind")
        raise EvidenceFormatError(
            f"{data.what}: certification data type {kind} ({carries}) where type {expected} "
            f"({_CERT_TYPE_NAMES[expected]}) belongs; "
            "only quotes that carry their PCK certificate chain can be verified offline"
        )
    content = data.take(size, f"certification data of type {kind}")
    data.done()
    return content
