"""A real three-level PKI (root -> intermediate -> code-signing leaf) built with `cryptography` for tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOT_BEFORE = datetime(2025, 1, 1, tzinfo=UTC)
LIFETIME = timedelta(days=3 * 365)


@dataclass(frozen=True)
class Pki:
    root: x509.Certificate
    root_path: Path
    intermediate: x509.Certificate
    leaf: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    leaf_path: Path
    leaf_key_path: Path
    chain_path: Path
    valid_at: datetime


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    email: str | None = None,
    not_before: datetime = NOT_BEFORE,
    lifetime: timedelta = LIFETIME,
    digital_signature: bool = True,
) -> x509.Certificate:
    """One certificate; CA certificates may sign certificates, leaves may sign code."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + lifetime)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=digital_signature and not ca, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if not ca and digital_signature:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    if email:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA384() if isinstance(issuer_key.curve, ec.SECP384R1) else hashes.SHA256())


def make_ca_chain(folder: Path, *, email: str = "signer@example.com") -> Pki:
    """Root and intermediate CAs and a leaf for ``email``, also written as PEM files under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    root_key, int_key = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root = issue("test-root", root_key, None, root_key, ca=True)
    intermediate = issue("test-intermediate", int_key, root, root_key, ca=True)
    leaf = issue("test-signer", leaf_key, intermediate, int_key, ca=False, email=email)
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    (folder / "root.pem").write_bytes(pem(root))
    (folder / "leaf.pem").write_bytes(pem(leaf))
    (folder / "chain.pem").write_bytes(pem(intermediate))
    (folder / "leaf.key.pem").write_bytes(
        leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
    )
    return Pki(root, folder / "root.pem", intermediate, leaf, leaf_key, folder / "leaf.pem",
               folder / "leaf.key.pem", folder / "chain.pem", NOT_BEFORE + timedelta(days=30))
