"""Certificates for path-validation tests, built with ``cryptography`` alone, one rule varied at a time.

Certificates are valid from a day ago to 30 days ahead unless a test says otherwise, so that tests
of expiry pass an explicit verification time instead of waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.now(UTC).replace(microsecond=0)

_USAGE_FLAGS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def key_usage(*flags: str) -> x509.KeyUsage:
    return x509.KeyUsage(**{f: f in flags for f in _USAGE_FLAGS})


def make_cert(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    *,
    ca: bool,
    path_length: int | None = None,
    usage: x509.KeyUsage | None = None,
    eku: list[x509.ObjectIdentifier] | None = None,
    san: list[x509.GeneralName] | None = None,
    extra: list[tuple[x509.ExtensionType, bool]] = (),  # type: ignore[assignment]
    not_before: datetime = NOW - timedelta(days=1),
    not_after: datetime = NOW + timedelta(days=30),
) -> x509.Certificate:
    """A certificate for ``key`` named CN=``name``, signed by ``issuer`` (self-signed when None)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    issuer_subject = issuer_cert.subject if issuer_cert else subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    for ext, critical in extra:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class Pki:
    """root → intermediate → leaf, the leaf fit for code signing."""

    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey
    intermediate: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate

    @property
    def chain(self) -> list[x509.Certificate]:
        return [self.leaf, self.intermediate]


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def make_pki(
    *,
    leaf_ca: bool = False,
    leaf_usage: x509.KeyUsage | None = None,
    leaf_eku: list[x509.ObjectIdentifier] | None = None,
    **leaf_options: object,
) -> Pki:
    root_key, intermediate_key, leaf_key = new_key(), new_key(), new_key()
    root = make_cert("Test Root", root_key, ca=True, usage=key_usage("key_cert_sign", "crl_sign"))
    intermediate = make_cert(
        "Test Intermediate", intermediate_key, (root, root_key),
        ca=True, path_length=0, usage=key_usage("key_cert_sign"),
    )
    leaf = make_cert(
        "release-signer",
        leaf_key,
        (intermediate, intermediate_key),
        ca=leaf_ca,
        usage=leaf_usage or key_usage("digital_signature"),
        eku=[ExtendedKeyUsageOID.CODE_SIGNING] if leaf_eku is None else leaf_eku,
        san=[x509.RFC822Name("release@example.com"), x509.UniformResourceIdentifier("https://ci.example.com/release")],
        **leaf_options,  # type: ignore[arg-type]
    )
    return Pki(root_key, root, intermediate_key, intermediate, leaf_key, leaf)


def flip_last_byte(der: bytes) -> bytes:
    """Flip a bit in the last byte: inside the signature value, so the certificate still parses."""
    return der[:-1] + bytes([der[-1] ^ 0x01])


def write_pem(cert: x509.Certificate, path: Path) -> Path:
    """The certificate as a PEM file, for commands and tools that take paths."""
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path
