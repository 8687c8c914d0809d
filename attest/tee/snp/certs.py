"""AMD's endorsement keys (VCEK, VLEK) and the chain that vouches for them, to AMD's pinned roots.

AMD signs per product: ARK-<product> (self-signed, RSA-PSS) issues ASK "SEV-<product>", which issues
the chip's VCEKs, and the ASVK "SEV-VLEK-<product>", which issues cloud providers' VLEKs. The ARKs,
ASKs and ASVKs ship in ``roots/`` (AMD's public certificates); only the ARKs are trust anchors. A root
carried by the evidence is never trusted: it must be byte-for-byte one of the pinned ARKs.

The VCEK states the TCB it was derived for and the chip's ID in private extensions
(OIDs 1.3.6.1.4.1.3704.1.*, AMD's VCEK certificate specification), which the verifier compares with
the report. AMD's certificates have serial number 0; the installed ``cryptography`` parses it without
a warning (it warns only about negative serials), so no warning filter is needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from types import MappingProxyType
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from attest.certs import UNREADABLE, describe, verify_chain
from attest.errors import CertificateError, EvidenceFormatError
from attest.tee.snp.tcb import PRODUCTS, Product

__all__ = [
    "EndorsementKey",
    "KeyKind",
    "check_carried_roots",
    "load_certificates",
    "parse_endorsement_key",
    "pinned_arks",
    "pinned_intermediates",
    "verify_endorsement_chain",
]

KeyKind = Literal["vcek", "vlek"]

_AMD = "1.3.6.1.4.1.3704.1."
_SPLS = {"3.1": "bootloader", "3.2": "tee", "3.3": "snp", "3.8": "microcode", "3.9": "fmc"}
_SPLS |= {f"3.{n}": f"spl_{n}" for n in (4, 5, 6, 7)}
_LEAF_NAMES: Mapping[str, KeyKind] = {"SEV-VCEK": "vcek", "SEV-VLEK": "vlek"}
_HWID_SIZES = (8, 64)  # Turin's VCEK carries the first 8 bytes of CHIP_ID; Milan and Genoa all 64


@dataclass(frozen=True, slots=True)
class EndorsementKey:
    """A VCEK or VLEK certificate with AMD's extensions decoded."""

    cert: x509.Certificate
    kind: KeyKind | None
    """From the subject (CN=SEV-VCEK or CN=SEV-VLEK); None for any other certificate."""
    product_name: str | None
    """The productName extension, e.g. ``Milan-B0`` (not authenticated until the chain is)."""
    tcb: Mapping[str, int] = field(default_factory=dict)
    """The SPLs the key was derived for: bootloader, tee, snp, microcode, fmc (Turin), spl_4..spl_7."""
    hw_id: bytes | None = None
    """The chip ID (VCEK only): 64 bytes, or 8 for Turin."""


def load_certificates(data: bytes, what: str) -> tuple[x509.Certificate, ...]:
    """The certificates in ``data``: one DER certificate, or PEM with one or more."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            certs = tuple(x509.load_pem_x509_certificates(data))
        else:
            certs = (x509.load_der_x509_certificate(data),)
        for cert in certs:  # parsed lazily by cryptography: fail here, not in the middle of a check
            _ = (cert.subject, cert.issuer, cert.extensions, cert.not_valid_before_utc, cert.not_valid_after_utc)
    except (*UNREADABLE, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise EvidenceFormatError(f"the {what} certificate cannot be parsed (DER or PEM expected): {exc}") from None
    return certs


def parse_endorsement_key(data: bytes, what: str = "VCEK/VLEK") -> EndorsementKey:
    """The one certificate in ``data`` as an endorsement key; EvidenceFormatError for a malformed extension."""
    certs = load_certificates(data, what)
    if len(certs) != 1:
        raise EvidenceFormatError(f"the {what} entry holds {len(certs)} certificates, expected one")
    cert = certs[0]
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    kind = _LEAF_NAMES.get(str(names[0].value)) if len(names) == 1 else None
    product_name, hw_id, tcb = None, None, {}
    for ext in cert.extensions:
        oid = ext.oid.dotted_string
        if not oid.startswith(_AMD) or not isinstance(ext.value, x509.UnrecognizedExtension):
            continue
        arc, value = oid.removeprefix(_AMD), ext.value.value
        if arc in _SPLS:
            tcb[_SPLS[arc]] = _spl(value, f"{what} extension {oid}")
        elif arc == "2":
            product_name = _der_string(value, f"{what} productName")
        elif arc == "4":
            hw_id = _hw_id(value, what)
    return EndorsementKey(cert, kind, product_name, tcb, hw_id)


@cache
def pinned_arks() -> Mapping[Product, x509.Certificate]:
    """AMD's root keys, one per product: the only trust anchors."""
    return MappingProxyType({p: _pinned(f"ark-{p.lower()}.pem") for p in PRODUCTS})


@cache
def pinned_intermediates() -> tuple[x509.Certificate, ...]:
    """AMD's ASKs and ASVKs, so that a VCEK or VLEK alone can be verified."""
    return tuple(_pinned(f"{role}-{p.lower()}.pem") for p in PRODUCTS for role in ("ask", "asvk"))


def check_carried_roots(carried: Iterable[x509.Certificate]) -> None:
    """CertificateError if the evidence carries a self-signed certificate that is not a pinned ARK."""
    pinned = {_der(c) for c in pinned_arks().values()}
    for cert in carried:
        if cert.subject == cert.issuer and _der(cert) not in pinned:
            raise CertificateError(
                f"the evidence carries a root '{describe(cert)}' that is not one of AMD's pinned ARKs"
            )


def verify_endorsement_chain(
    key: EndorsementKey, carried: Sequence[x509.Certificate], product: Product | None
) -> tuple[tuple[x509.Certificate, ...], Product]:
    """The path key → ASK/ASVK → ARK and the ARK's product; CertificateError with the reason otherwise.

    Signatures and CA rules are checked as of the key's issuance (its notBefore), when AMD signed it:
    whether each certificate is still valid at the appraisal time is a freshness question, which the
    verifier asks separately. ``product`` (from a v3+ report's CPUID) restricts the root to that product's.
    """
    if key.kind is None:
        raise CertificateError(f"'{describe(key.cert)}' is neither a VCEK nor a VLEK (CN=SEV-VCEK or CN=SEV-VLEK)")
    arks = pinned_arks()
    roots = [arks[product]] if product else list(arks.values())
    # AMD's own first: verify_chain tries each certificate once, so a root reached through a broken carried
    # copy of the ASK would not be tried again through the pinned one.
    intermediates = list(pinned_intermediates()) + [c for c in carried if c.subject != c.issuer]
    path = verify_chain(key.cert, intermediates, roots, key.cert.not_valid_before_utc, require_signing_usage=False)
    root_product = next(p for p, ark in arks.items() if ark == path[-1])
    issuer = f"SEV-VLEK-{root_product}" if key.kind == "vlek" else f"SEV-{root_product}"
    role = "an ASVK" if key.kind == "vlek" else "an ASK"
    if len(path) != 3 or _common_name(path[1]) != issuer:
        via = " → ".join(describe(c) for c in path)
        raise CertificateError(f"a {key.kind.upper()} must chain through {role} ({issuer}), but the path is {via}")
    return path, root_product


def _pinned(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((files("attest.tee.snp") / "roots" / name).read_bytes())


def _common_name(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if len(names) == 1 else None


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def _tlv(value: bytes, what: str) -> tuple[int, bytes]:
    """(tag, contents) of one DER element that spans ``value`` exactly."""
    if len(value) < 2:
        raise EvidenceFormatError(f"{what} is truncated ({len(value)} bytes)")
    tag, length, start = value[0], value[1], 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 2 or len(value) < 2 + count:
            raise EvidenceFormatError(f"{what} has an unsupported DER length")
        length, start = int.from_bytes(value[2 : 2 + count], "big"), 2 + count
    if start + length != len(value):
        raise EvidenceFormatError(
            f"{what}: the DER length {length} does not match the {len(value) - start} bytes given"
        )
    return tag, value[start:]


def _spl(value: bytes, what: str) -> int:
    tag, body = _tlv(value, what)
    if tag != 0x02 or not body or len(body) > 2 or body[0] & 0x80:
        raise EvidenceFormatError(f"{what} is not a DER INTEGER from 0 to 255")
    number = int.from_bytes(body, "big")
    if number > 255:
        raise EvidenceFormatError(f"{what} is {number}, an SPL is at most 255")
    return number


def _der_string(value: bytes, what: str) -> str:
    tag, body = _tlv(value, what)
    if tag not in (0x16, 0x0C):  # IA5String as AMD writes it; UTF8String tolerated
        raise EvidenceFormatError(f"{what} is not a DER string (tag {tag:#04x})")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise EvidenceFormatError(f"{what} is not valid text") from None


def _hw_id(value: bytes, what: str) -> bytes:
    """The chip ID: AMD writes the raw bytes, some tools a DER OCTET STRING (``04 40 ...``); both mean the same."""
    if len(value) in _HWID_SIZES:
        return value
    if len(value) - 2 in _HWID_SIZES and value[0] == 0x04 and value[1] == len(value) - 2:
        return value[2:]
    raise EvidenceFormatError(
        f"the {what} hwID is {len(value)} bytes, neither a chip ID (8 or 64) nor one in an OCTET STRING"
    )
