"""The SEV-SNP vectors and the mutations the negative tests make of them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtensionOID, NameOID

from tests.conftest import shared_path

MILAN_T = datetime(2022, 9, 24, 12, tzinfo=UTC)
"""go-sev-guest's Milan report is authentic from 2022-09-24 (its VCEK's notBefore) to 2029-09-24."""
TRUSTEE_T = datetime(2024, 1, 1, tzinfo=UTC)
"""trustee's Milan report is authentic from 2023-01-24 to 2030-01-24."""


def vector(*parts: str) -> bytes:
    return shared_path("vectors", "tee", "sev-snp", *parts).read_bytes()


def milan() -> tuple[bytes, dict[str, bytes]]:
    """go-sev-guest's v2 report (DEBUG set) with its VCEK and the ASK+ARK PEM it ships."""
    certs = {"vcek": vector("go-sev-guest", "vcek.testcer"), "ask": vector("go-sev-guest", "milan.testcer")}
    return vector("go-sev-guest", "attestation.bin"), certs


def trustee() -> tuple[bytes, dict[str, bytes]]:
    """trustee's v2 report (no debug) with its VCEK only: the ASK and ARK are the pinned ones."""
    return vector("trustee", "test-report.bin"), {"vcek": vector("trustee", "test-vcek.der")}


def edit(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


def flip(data: bytes, offset: int, bit: int = 0) -> bytes:
    return edit(data, offset, bytes([data[offset] ^ (1 << bit)]))


def resign(report: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """``report`` with its signature replaced by ``key``'s over bytes 0..0x29F, in AMD's little-endian layout."""
    r, s = decode_dss_signature(key.sign(report[:0x2A0], ec.ECDSA(hashes.SHA384())))
    return edit(report, 0x2A0, r.to_bytes(72, "little") + s.to_bytes(72, "little"))


def cert_table(*entries: tuple[uuid.UUID, bytes], pad: int = 0) -> bytes:
    """The GHCB layout, written here independently of the parser: 24-byte headers, a zero entry, the data."""
    header_size = (len(entries) + 1) * 24
    header, body = b"", b""
    for guid, data in entries:
        header += guid.bytes_le + (header_size + len(body)).to_bytes(4, "little") + len(data).to_bytes(4, "little")
        body += data
    return header + bytes(24) + body + bytes(pad)


_AMD = "1.3.6.1.4.1.3704.1."
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)


@dataclass
class ForgedAmd:
    """A self-made ARK → ASK → VCEK (or ASVK → VLEK), named and extended like AMD's, and the leaf's key."""

    ark: x509.Certificate
    ask: x509.Certificate
    leaf: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey


def forge_amd(
    real_ark: x509.Certificate,
    real_ask: x509.Certificate,
    real_leaf: x509.Certificate,
    *,
    leaf_name: str | None = None,
    amd_extensions: Mapping[str, bytes] | None = None,
    leaf_from: datetime | None = None,
) -> ForgedAmd:
    """RSA-PSS signed copies of AMD's chain under new keys: everything but the keys is AMD's, unless
    ``leaf_name`` renames the leaf (CN), ``amd_extensions`` (arc under 1.3.6.1.4.1.3704.1. -> DER) change it
    or ``leaf_from`` moves its notBefore."""
    ark_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ask_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf_key = ec.generate_private_key(ec.SECP384R1())

    def copy(
        cert: x509.Certificate,
        public: CertificatePublicKeyTypes,
        issuer: x509.Certificate | None,
        signer: rsa.RSAPrivateKey,
        changes: Mapping[str, bytes] | None = None,
        name: str | None = None,
        valid_from: datetime | None = None,
    ) -> x509.Certificate:
        subject = cert.subject
        if name:
            subject = x509.Name(
                [x509.NameAttribute(a.oid, name) if a.oid == NameOID.COMMON_NAME else a for a in cert.subject]
            )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.subject if issuer else subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid_from or cert.not_valid_before_utc)
            .not_valid_after(cert.not_valid_after_utc)
        )
        values = {e.oid.dotted_string: (e.value, e.critical) for e in cert.extensions}
        for arc, der in (changes or {}).items():
            oid = x509.ObjectIdentifier(_AMD + arc)
            values[oid.dotted_string] = (x509.UnrecognizedExtension(oid, der), False)
        for oid, (value, critical) in values.items():
            if oid not in (
                ExtensionOID.AUTHORITY_KEY_IDENTIFIER.dotted_string,
                ExtensionOID.SUBJECT_KEY_IDENTIFIER.dotted_string,
            ):
                builder = builder.add_extension(value, critical)
        return builder.sign(signer, hashes.SHA384(), rsa_padding=_PSS)

    ark = copy(real_ark, ark_key.public_key(), None, ark_key)
    ask = copy(real_ask, ask_key.public_key(), ark, ark_key)
    leaf = copy(real_leaf, leaf_key.public_key(), ask, ask_key, amd_extensions, leaf_name, leaf_from)
    return ForgedAmd(ark, ask, leaf, leaf_key)
