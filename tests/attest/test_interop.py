"""Interoperability with the OpenSSF model-signing format, in both directions, with the real package.

Vectors: ../shared/vectors/signing/model-transparency (Apache-2.0, sigstore/model-transparency), made by
model-signing itself: an ECDSA P-384 key bundle, a certificate bundle and a Sigstore keyless bundle.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from attest.bundle import CertificateSigner, KeySigner
from attest.errors import IdentityError, SignatureError, SubjectMismatchError, VerificationError
from attest.keys import generate_private_key, load_private_key, save_private_key, save_public_key
from attest.signing import sign_model, write_bundle
from attest.trust import TrustAnchors
from attest.verification import read_bundle, verify_model
from policies.schema import KeylessIdentity, Policy, TrustSection
from tests.certgen import make_pki, write_pem
from tests.conftest import shared_path

POLICY = Policy(name="interop", trust=TrustSection(require_sbom=False))
IDENTITY = KeylessIdentity(identity="stefanb@us.ibm.com", issuer="https://sigstore.verify.ibm.com/oauth2")
MODEL_SIGNING = [sys.executable, "-m", "model_signing"]


def _vector(name: str) -> Path:
    return shared_path("vectors", "signing", "model-transparency", name)


def _keys() -> Path:
    return _vector("keys") / "certificate"


def _anchors(kind: str) -> TrustAnchors:
    if kind == "v1.1.0-elliptic-key":
        return TrustAnchors.from_policy(POLICY.trust, keys=(_keys() / "signing-key-pub.pem",))
    if kind == "v1.1.0-certificate":
        return TrustAnchors.from_policy(POLICY.trust, roots=(_keys() / "ca-cert.pem",))
    return TrustAnchors.from_policy(
        POLICY.trust, keyless=(IDENTITY,),
        sigstore_trust_config=shared_path("vectors", "signing", "sigstore-prod-trust-config.json"),
    )


VECTORS = ["v1.1.0-elliptic-key", "v1.1.0-certificate", "v1.1.0-sigstore"]
# The certificate vector's chain is valid 2025-05-02..2035-04-30; keyless bundles carry their own time.
AT = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("kind", VECTORS)
def test_upstream_bundles_verify(kind: str) -> None:
    model = _vector(kind)
    verified = verify_model(model, read_bundle(model / "model.sig"), _anchors(kind), POLICY, at=AT,
                            ignore=["ignore-me", model / "model.sig"])
    assert verified.manifest.format == "oms"
    assert sorted(verified.manifest.files) == ["signme-1", "signme-2"]
    if kind == "v1.1.0-sigstore":
        assert verified.signer.time_source == "transparency-log"
        assert verified.signer.time == datetime.fromtimestamp(1760062340, UTC)


@pytest.mark.parametrize("kind", VECTORS)
def test_files_the_signer_left_out_must_be_named(kind: str) -> None:
    model = _vector(kind)
    with pytest.raises(SubjectMismatchError, match="ignore-me: not signed.*signer excluded it"):
        verify_model(model, read_bundle(model / "model.sig"), _anchors(kind), POLICY, at=AT,
                     ignore=[model / "model.sig"])


def _tampered_copy(kind: str, tmp_path: Path, change: str) -> Path:
    model = tmp_path / kind
    shutil.copytree(_vector(kind), model)
    for p in model.rglob("*"):
        p.chmod(0o644)
    model.chmod(0o755)
    if change == "byte":
        data = bytearray((model / "signme-1").read_bytes())
        data[0] ^= 0x01
        (model / "signme-1").write_bytes(bytes(data))
    elif change == "added":
        (model / "signme-3").write_text("new")
    elif change == "removed":
        (model / "signme-2").unlink()
    return model


@pytest.mark.parametrize("kind", VECTORS)
@pytest.mark.parametrize(("change", "why"), [("byte", "signme-1: content differs"),
                                              ("added", "signme-3: not signed"),
                                              ("removed", "signme-2: missing")])
def test_tampered_copies_fail(kind: str, change: str, why: str, tmp_path: Path) -> None:
    model = _tampered_copy(kind, tmp_path, change)
    with pytest.raises(SubjectMismatchError, match=why):
        verify_model(model, read_bundle(model / "model.sig"), _anchors(kind), POLICY, at=AT,
                     ignore=["ignore-me", model / "model.sig"])


def test_upstream_key_bundle_with_another_key_fails(tmp_path: Path) -> None:
    save_public_key(tmp_path / "other.pub.pem", generate_private_key("ecdsa-p384").public_key())
    model = _vector("v1.1.0-elliptic-key")
    anchors = TrustAnchors.from_policy(POLICY.trust, keys=(tmp_path / "other.pub.pem",))
    with pytest.raises((IdentityError, SignatureError)):
        verify_model(model, read_bundle(model / "model.sig"), anchors, POLICY, ignore=["ignore-me", "model.sig"])


def test_upstream_keyless_bundle_with_another_identity_fails() -> None:
    model = _vector("v1.1.0-sigstore")
    anchors = TrustAnchors.from_policy(
        POLICY.trust, keyless=(KeylessIdentity(identity="mallory@example.com", issuer=IDENTITY.issuer),),
        sigstore_trust_config=shared_path("vectors", "signing", "sigstore-prod-trust-config.json"),
    )
    with pytest.raises(VerificationError):
        verify_model(model, read_bundle(model / "model.sig"), anchors, POLICY, ignore=["ignore-me", "model.sig"])


# --- our --format oms output, verified by the real model_signing command --------------------------------------


def _oms_model(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    (model / "nested").mkdir(parents=True)
    (model / "config.json").write_text('{"model_type": "llama"}')
    (model / "nested" / "notes.txt").write_text("weights live elsewhere in this toy")
    return model


def _run_model_signing(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MODEL_SIGNING, *args], capture_output=True, text=True, check=False, timeout=120)


def test_model_signing_verifies_our_key_bundle(tmp_path: Path) -> None:
    model = _oms_model(tmp_path)
    key = generate_private_key("ecdsa-p384")
    save_public_key(tmp_path / "pub.pem", key.public_key())
    write_bundle(sign_model(model, KeySigner(key), format="oms").bundle, tmp_path / "model.sig")
    ok = _run_model_signing("verify", "key", str(model), "--signature", str(tmp_path / "model.sig"),
                            "--public_key", str(tmp_path / "pub.pem"))
    assert ok.returncode == 0, ok.stderr + ok.stdout
    (model / "config.json").write_text('{"model_type": "evil"}')
    bad = _run_model_signing("verify", "key", str(model), "--signature", str(tmp_path / "model.sig"),
                             "--public_key", str(tmp_path / "pub.pem"))
    assert bad.returncode != 0


def test_model_signing_verifies_our_bundle_made_with_its_own_test_key(tmp_path: Path) -> None:
    model = _oms_model(tmp_path)
    key = load_private_key(_keys() / "signing-key.pem")
    write_bundle(sign_model(model, KeySigner(key), format="oms").bundle, tmp_path / "model.sig")
    ok = _run_model_signing("verify", "key", str(model), "--signature", str(tmp_path / "model.sig"),
                            "--public_key", str(_keys() / "signing-key-pub.pem"))
    assert ok.returncode == 0, ok.stderr + ok.stdout


def test_model_signing_verifies_our_certificate_bundle(tmp_path: Path) -> None:
    model = _oms_model(tmp_path)
    pki = make_pki()
    write_bundle(sign_model(model, CertificateSigner(pki.leaf_key, pki.chain), format="oms").bundle,
                 tmp_path / "model.sig")
    ok = _run_model_signing("verify", "certificate", str(model), "--signature", str(tmp_path / "model.sig"),
                            "--certificate_chain", str(write_pem(pki.root, tmp_path / "root.pem")))
    assert ok.returncode == 0, ok.stderr + ok.stdout


def test_we_verify_what_model_signing_signs(tmp_path: Path) -> None:
    model = _oms_model(tmp_path)
    key = generate_private_key("ecdsa-p256")
    save_private_key(tmp_path / "key.pem", key, None)
    save_public_key(tmp_path / "pub.pem", key.public_key())
    made = _run_model_signing("sign", "key", str(model), "--signature", str(tmp_path / "model.sig"),
                              "--private_key", str(tmp_path / "key.pem"))
    assert made.returncode == 0, made.stderr + made.stdout
    anchors = TrustAnchors.from_policy(POLICY.trust, keys=(tmp_path / "pub.pem",))
    verified = verify_model(model, read_bundle(tmp_path / "model.sig"), anchors, POLICY)
    assert sorted(verified.manifest.files) == ["config.json", "nested/notes.txt"]
