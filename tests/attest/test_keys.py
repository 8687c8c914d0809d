from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from attest.errors import AttestError, SignatureError
from attest.keys import (
    as_public_key,
    generate_private_key,
    key_id,
    load_private_key,
    load_public_key,
    save_private_key,
    save_public_key,
    sign_bytes,
    verify_bytes,
)
from tests.attest.vectors import vector_key
from tests.certgen import make_cert, new_key

KINDS = ["ecdsa-p256", "ecdsa-p384", "ed25519"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("password", [None, b"correct horse"])
def test_save_and_load_round_trip(tmp_path: Path, kind: str, password: bytes | None) -> None:
    key = generate_private_key(kind)  # type: ignore[arg-type]
    save_private_key(tmp_path / "k.pem", key, password)
    save_public_key(tmp_path / "k.pub.pem", key.public_key())
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "k.pub.pem").stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.pem", "k.pub.pem"]  # no temporary files left
    loaded = load_private_key(tmp_path / "k.pem", password)
    public = load_public_key(tmp_path / "k.pub.pem")
    assert key_id(loaded.public_key()) == key_id(public) == key_id(key.public_key())
    verify_bytes(public, sign_bytes(loaded, b"data"), b"data")


def test_existing_files_are_kept_unless_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_text("precious")
    with pytest.raises(AttestError, match="already exists"):
        save_private_key(path, generate_private_key("ed25519"), None)
    assert path.read_text() == "precious"
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    save_private_key(path, generate_private_key("ed25519"), None, overwrite=True)
    assert b"PRIVATE KEY" in path.read_bytes()
    with pytest.raises(AttestError, match="already exists"):
        save_public_key(path, generate_private_key("ed25519").public_key())


def test_unwritable_destination(tmp_path: Path) -> None:
    with pytest.raises(AttestError, match="cannot write"):
        save_private_key(tmp_path / "missing" / "k.pem", generate_private_key("ed25519"), None)


def test_unknown_kind() -> None:
    with pytest.raises(AttestError, match="unknown key type 'rsa'"):
        generate_private_key("rsa")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("curve", "hash_type"),
    [(ec.SECP256R1(), hashes.SHA256()), (ec.SECP384R1(), hashes.SHA384()), (ec.SECP521R1(), hashes.SHA512())],
)
def test_ecdsa_uses_the_curve_hash(curve: ec.EllipticCurve, hash_type: hashes.HashAlgorithm) -> None:
    key = ec.generate_private_key(curve)
    signature = sign_bytes(key, b"data")
    key.public_key().verify(signature, b"data", ec.ECDSA(hash_type))  # an independent check
    verify_bytes(key.public_key(), signature, b"data")


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_data_or_key_fails(kind: str) -> None:
    key = generate_private_key(kind)  # type: ignore[arg-type]
    signature = sign_bytes(key, b"data")
    with pytest.raises(SignatureError, match=f"does not verify with key {key_id(key.public_key())}"):
        verify_bytes(key.public_key(), signature, b"date")
    other = generate_private_key(kind).public_key()  # type: ignore[arg-type]
    with pytest.raises(SignatureError):
        verify_bytes(other, signature, b"data")


def _pem_private(key: object, password: bytes | None = None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _pem_public(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


_ED = ed25519.Ed25519PrivateKey.generate()
_EC = new_key()
_CERT_PEM = make_cert("x", _EC, ca=False).public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(
    ("content", "password", "reason"),
    [
        (lambda: _pem_private(_ED, b"pw"), None, "is encrypted; give its password"),
        (lambda: _pem_private(_ED, b"pw"), b"nope", "wrong password or malformed"),
        (lambda: _pem_private(_ED), b"pw", "not encrypted, but a password was given"),
        (lambda: _pem_private(rsa.generate_private_key(65537, 2048)), None,
         "RSA keys are not supported; use ECDSA P-256, P-384, P-521 or Ed25519"),
        (lambda: _pem_private(ec.generate_private_key(ec.SECP256K1())), None, "curve secp256k1 are not supported"),
        (lambda: _CERT_PEM, None, "holds a certificate, not a private key"),
        (lambda: b"hello", None, "is not a PEM private key"),
        (None, None, "cannot read .*k.pem"),
    ],
)
def test_private_key_errors(tmp_path: Path, content: Any, password: bytes | None, reason: str) -> None:
    if content is not None:
        (tmp_path / "k.pem").write_bytes(content())
    with pytest.raises(AttestError, match=reason):
        load_private_key(tmp_path / "k.pem", password)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (lambda: _CERT_PEM, "holds a certificate, not a public key.*openssl x509 -pubkey"),
        (lambda: _pem_private(_EC), "holds a private key"),
        (lambda: _pem_public(rsa.generate_private_key(65537, 2048).public_key()), "RSA keys are not supported"),
        (lambda: b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "is not a PEM public key"),
        (lambda: b"x" * (2 << 20), "too large"),
    ],
)
def test_public_key_errors(tmp_path: Path, content: Any, reason: str) -> None:
    (tmp_path / "k.pub.pem").write_bytes(content())
    with pytest.raises(AttestError, match=reason):
        load_public_key(tmp_path / "k.pub.pem")


def test_p521_public_keys_are_accepted(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP521R1()).public_key()
    (tmp_path / "p521.pem").write_bytes(_pem_public(key))
    assert key_id(load_public_key(tmp_path / "p521.pem")) == key_id(key)
    assert as_public_key(key) is key


def test_key_id_matches_the_model_signing_hint() -> None:
    # The hint in v1.1.0-elliptic-key/model.sig, written by model-signing for this key.
    public = load_public_key(vector_key("signing-key-pub.pem"))
    assert key_id(public) == "e8450dec4eb99dae995da9af1bc2cc9f76ed669ee2e744f57abba763df3e3f8e"
    assert key_id(load_private_key(vector_key("signing-key.pem")).public_key()) == key_id(public)
