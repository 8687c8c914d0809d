from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from attest.errors import AttestError, IdentityError
from attest.keys import generate_private_key, key_id, save_public_key
from attest.trust import RootAnchor, TrustAnchors, load_certificates
from policies.schema import CertificateRoot, KeylessIdentity, TrustSection
from tests.certgen import make_pki

ALICE = KeylessIdentity(identity="alice@example.com", issuer="https://issuer.example")
BOB = KeylessIdentity(identity="bob@example.com", issuer="https://issuer.example")


def _files(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / f"{name}.pem" for name in ("key1", "key2", "root1", "root2")}
    for name in ("key1", "key2"):
        save_public_key(paths[name], generate_private_key("ecdsa-p256").public_key())
    for name in ("root1", "root2"):
        paths[name].write_bytes(make_pki().root.public_bytes(Encoding.PEM))
    return paths


def test_command_line_anchors_add_to_the_policy(tmp_path: Path) -> None:
    f = _files(tmp_path)
    (tmp_path / "trust.json").write_text("{}")
    trust = TrustSection(
        keys=(f["key1"],),
        certificate_roots=(CertificateRoot(path=f["root1"], identities=("release@example.com",)),),
        keyless=(ALICE,),
        sigstore_trust_config=tmp_path / "trust.json",
    )
    anchors = TrustAnchors.from_policy(
        trust, keys=(f["key2"], f["key1"]), roots=(f["root2"],), root_identities=("ci@example.com",),
        keyless=(BOB, ALICE),
    )
    assert len(anchors.keys) == 2  # the same key twice counts once
    assert [identities for _, identities in anchors.roots] == [("release@example.com",), ("ci@example.com",)]
    assert anchors.roots[0][0] == load_certificates(f["root1"])[0]
    assert anchors.keyless == (ALICE, BOB)
    assert anchors.sigstore_trust_config == tmp_path / "trust.json"
    assert not anchors.is_empty
    anchors.check_not_empty()


def test_the_command_line_trust_config_wins(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "b.json").write_text("{}")
    trust = TrustSection(sigstore_trust_config=tmp_path / "a.json")
    assert TrustAnchors.from_policy(trust, sigstore_trust_config=tmp_path / "b.json").sigstore_trust_config == (
        tmp_path / "b.json"
    )
    with pytest.raises(AttestError, match="sigstore trust config .*missing.json is not a readable file"):
        TrustAnchors.from_policy(trust, sigstore_trust_config=tmp_path / "missing.json")


def test_empty_anchors_fail_closed() -> None:
    anchors = TrustAnchors.from_policy(TrustSection())
    assert anchors.is_empty
    with pytest.raises(IdentityError, match="no trusted keys, certificate roots or keyless identities are configured"):
        anchors.check_not_empty()


def test_unreadable_anchor_files_name_the_file(tmp_path: Path) -> None:
    f = _files(tmp_path)
    with pytest.raises(AttestError, match="cannot read .*nope.pem"):
        TrustAnchors.from_policy(TrustSection(), keys=(tmp_path / "nope.pem",))
    with pytest.raises(AttestError, match="root1.pem holds a certificate, not a public key"):
        TrustAnchors.from_policy(TrustSection(), keys=(f["root1"],))
    with pytest.raises(AttestError, match="key1.pem holds a key, not a certificate"):
        TrustAnchors.from_policy(TrustSection(), roots=(f["key1"],))
    (tmp_path / "junk.pem").write_text("junk")
    with pytest.raises(AttestError, match="junk.pem is not a PEM certificate file"):
        TrustAnchors.from_policy(TrustSection(), roots=(tmp_path / "junk.pem",))
    (tmp_path / "broken.pem").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(AttestError, match="broken.pem: malformed PEM certificate"):
        TrustAnchors.from_policy(TrustSection(), roots=(tmp_path / "broken.pem",))
    with pytest.raises(AttestError, match="cannot read .*gone.pem"):
        TrustAnchors.from_policy(TrustSection(certificate_roots=(CertificateRoot(path=tmp_path / "gone.pem"),)))


def test_a_pem_bundle_of_roots_trusts_each(tmp_path: Path) -> None:
    roots = [make_pki().root, make_pki().root]
    (tmp_path / "roots.pem").write_bytes(b"".join(r.public_bytes(Encoding.PEM) for r in roots))
    anchors = TrustAnchors.from_policy(TrustSection(), roots=(tmp_path / "roots.pem",))
    assert [cert for cert, _ in anchors.roots] == roots


def test_direct_construction_is_checked_and_normalised() -> None:
    pki = make_pki()
    key = generate_private_key("ed25519").public_key()
    pairs = (("id", "https://iss"),)
    roots = ((pki.root, ("a@example.com",)),)
    anchors = TrustAnchors(keys=(key,), roots=roots, keyless=pairs)  # type: ignore[arg-type]
    assert anchors.roots == (RootAnchor(pki.root, ("a@example.com",)),)
    assert anchors.keyless == (KeylessIdentity(identity="id", issuer="https://iss"),)
    assert key_id(anchors.keys[0]) == key_id(key)
    with pytest.raises(AttestError, match="RSA keys are not supported"):
        TrustAnchors(keys=(rsa.generate_private_key(65537, 2048).public_key(),))  # type: ignore[arg-type]
    with pytest.raises(AttestError, match=r"\(certificate, tuple of identities\) pairs"):
        TrustAnchors(roots=((pki.root, "a@example.com"),))  # type: ignore[arg-type]  # one string, not a tuple
    with pytest.raises(AttestError, match=r"\(certificate, tuple of identities\) pairs"):
        TrustAnchors(roots=((b"not a certificate", ()),))  # type: ignore[arg-type]
