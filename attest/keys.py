"""Signing keys: generation, PEM files, the key id, and raw sign/verify.

Only the algorithms that Sigstore bundles and the OpenSSF model-signing tool agree on are accepted:
ECDSA on P-256, P-384 and P-521 (hashed with SHA-256, SHA-384 and SHA-512, the hash that matches the
curve) and Ed25519. Anything else is refused when it is loaded, so that a key that could never verify
a bundle, or one weaker than intended, is caught before anything is signed with it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from attest.errors import AttestError, SignatureError
from sbom.fileio import DocumentTooLarge, read_capped, write_atomically

__all__ = [
    "KeyKind",
    "PrivateKey",
    "PublicKey",
    "as_private_key",
    "as_public_key",
    "generate_private_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "read_pem_file",
    "save_private_key",
    "save_public_key",
    "sign_bytes",
    "verify_bytes",
]

KeyKind = Literal["ecdsa-p256", "ecdsa-p384", "ed25519"]
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_CURVE_HASH: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}
_NEW_CURVE: dict[str, ec.EllipticCurve] = {"ecdsa-p256": ec.SECP256R1(), "ecdsa-p384": ec.SECP384R1()}
_SUPPORTED = "use ECDSA P-256, P-384, P-521 or Ed25519"
_MAX_KEY_FILE = 1 << 20


def generate_private_key(kind: KeyKind) -> PrivateKey:
    """A fresh key of one of the kinds ``modelgate keygen`` offers."""
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind in _NEW_CURVE:
        return ec.generate_private_key(_NEW_CURVE[kind])
    raise AttestError(f"unknown key type {kind!r}; choose ecdsa-p256, ecdsa-p384 or ed25519")


def as_private_key(key: object) -> PrivateKey:
    """``key`` as a supported private key, or AttestError saying why it is not one."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVE_HASH:
        return key
    raise AttestError(_unsupported(key))


def as_public_key(key: object) -> PublicKey:
    """``key`` as a supported public key, or AttestError saying why it is not one."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _CURVE_HASH:
        return key
    raise AttestError(_unsupported(key))


def _unsupported(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return f"ECDSA keys on curve {key.curve.name} are not supported; {_SUPPORTED}"
    kind = type(key).__name__.removeprefix("_").replace("PrivateKey", "").replace("PublicKey", "")
    return f"{kind} keys are not supported; {_SUPPORTED}"


def key_id(public_key: CertificatePublicKeyTypes) -> str:
    """The bundle's key hint: SHA-256 of the PEM SubjectPublicKeyInfo, in hex, as model-signing writes it."""
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def sign_bytes(private_key: PrivateKey, data: bytes) -> bytes:
    """A signature over ``data``: DER-encoded ECDSA with the curve's hash, or pure Ed25519."""
    key = as_private_key(private_key)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    return key.sign(data, _ecdsa(key.curve))


def verify_bytes(public_key: PublicKey, signature: bytes, data: bytes) -> None:
    """Return if ``signature`` is ``public_key``'s over ``data``; raise SignatureError otherwise."""
    key = as_public_key(public_key)
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            key.verify(signature, data, _ecdsa(key.curve))
    except InvalidSignature:
        raise SignatureError(f"the signature does not verify with key {key_id(public_key)}") from None


def _ecdsa(curve: ec.EllipticCurve) -> ec.ECDSA:
    return ec.ECDSA(_CURVE_HASH[curve.name]())  # the curve was checked by as_private_key / as_public_key


def load_private_key(path: Path, password: bytes | None = None) -> PrivateKey:
    """Read a PEM private key; every failure names the file and what to do about it."""
    data = read_pem_file(path)
    if b"-----BEGIN CERTIFICATE-----" in data:
        raise AttestError(f"{path} holds a certificate, not a private key; pass the certificate with --cert")
    if b"PRIVATE KEY-----" not in data:
        raise AttestError(f"{path} is not a PEM private key")
    try:
        key = serialization.load_pem_private_key(data, password)
    except TypeError:
        if password is None:
            raise AttestError(f"{path} is encrypted; give its password") from None
        raise AttestError(f"{path} is not encrypted, but a password was given") from None
    except UnsupportedAlgorithm as exc:
        raise AttestError(f"{path}: unsupported key algorithm: {exc}; {_SUPPORTED}") from None
    except ValueError:
        raise AttestError(f"{path}: cannot load the private key (wrong password or malformed PEM)") from None
    try:
        return as_private_key(key)
    except AttestError as exc:
        raise AttestError(f"{path}: {exc.reason}") from None


def load_public_key(path: Path) -> PublicKey:
    """Read a PEM public key; a certificate or a private key given by mistake gets its own message."""
    data = read_pem_file(path)
    if b"-----BEGIN CERTIFICATE-----" in data:
        raise AttestError(
            f"{path} holds a certificate, not a public key; trust its CA as a certificate root, "
            "or extract the key with `openssl x509 -pubkey -noout`"
        )
    if b"PRIVATE KEY-----" in data:
        raise AttestError(f"{path} holds a private key; give the public key (never share the private one)")
    try:
        key = serialization.load_pem_public_key(data)
    except UnsupportedAlgorithm as exc:
        raise AttestError(f"{path}: unsupported key algorithm: {exc}; {_SUPPORTED}") from None
    except ValueError:
        raise AttestError(f"{path} is not a PEM public key") from None
    try:
        return as_public_key(key)
    except AttestError as exc:
        raise AttestError(f"{path}: {exc.reason}") from None


def save_private_key(path: Path, key: PrivateKey, password: bytes | None, *, overwrite: bool = False) -> None:
    """Write ``key`` as PKCS#8 PEM, readable by its owner only; an existing file is kept unless ``overwrite``."""
    encryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    _write_atomic(Path(path), pem, 0o600, overwrite)


def save_public_key(path: Path, key: PublicKey, *, overwrite: bool = False) -> None:
    """Write ``key`` as SubjectPublicKeyInfo PEM, the form ``load_public_key`` and model-signing read."""
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_atomic(Path(path), pem, 0o644, overwrite)


def read_pem_file(path: Path) -> bytes:
    """A PEM file's bytes (keys, certificates), capped: a path to something huge is refused, not read."""
    try:
        return read_capped(path, _MAX_KEY_FILE)
    except DocumentTooLarge:
        raise AttestError(f"{path} is too large to be a PEM key or certificate file") from None
    except OSError as exc:
        raise AttestError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _write_atomic(path: Path, data: bytes, mode: int, overwrite: bool) -> None:
    try:
        write_atomically(path, data, mode=mode, overwrite=overwrite)
    except FileExistsError:
        raise AttestError(f"{path} already exists; remove it or choose another file name") from None
    except OSError as exc:
        raise AttestError(f"cannot write {path}: {exc.strerror or exc}") from exc
