"""Signing and verifying whole models: round trips per signer, and every tamper case failing with its reason."""

from __future__ import annotations

import json
import pickle
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from attest.bundle import CertificateSigner, KeySigner
from attest.errors import (
    BundleFormatError,
    CertificateError,
    IdentityError,
    PolicyViolation,
    SignatureError,
    SubjectMismatchError,
)
from attest.keys import generate_private_key
from attest.signing import sign_model
from attest.statement import IN_TOTO_PAYLOAD_TYPE, oms_statement
from attest.trust import TrustAnchors
from attest.verification import verify_model
from policies.schema import Policy, TrustSection
from sbom.errors import RefusedFormatError
from sbom.hashing import hash_files
from sbom.inventory import scan_model
from tests.certgen import NOW, make_pki

LENIENT = Policy(name="test", trust=TrustSection(require_sbom=False))
STRICT = Policy(name="strict", trust=TrustSection(require_sbom=True))


def _bundle_bytes(bundle: dict) -> bytes:
    return json.dumps(bundle).encode()


def _key_anchors(key) -> TrustAnchors:
    return TrustAnchors(keys=(key.public_key(),))


@pytest.mark.parametrize("kind", ["ecdsa-p256", "ecdsa-p384", "ed25519"])
def test_key_round_trip_with_sbom(hf_model: Path, kind: str) -> None:
    key = generate_private_key(kind)
    outcome = sign_model(hf_model, KeySigner(key))
    verified = verify_model(hf_model, _bundle_bytes(outcome.bundle), _key_anchors(key), STRICT)
    assert verified.manifest.format == "modelgate"
    assert set(verified.manifest.files) == {"config.json", "model.safetensors", "tokenizer.json",
                                            "tokenizer_config.json"}
    assert verified.manifest.bom["specVersion"] == "1.6"
    assert verified.signer.kind == "key"


def test_statement_names_every_file_with_its_sha256(hf_model: Path) -> None:
    import base64
    import hashlib

    key = generate_private_key("ecdsa-p256")
    bundle = sign_model(hf_model, KeySigner(key)).bundle
    envelope = bundle["dsseEnvelope"]
    assert envelope["payloadType"] == IN_TOTO_PAYLOAD_TYPE
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["predicateType"] == "https://cyclonedx.org/bom"
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    for name, digest in subjects.items():
        assert hashlib.sha256((hf_model / name).read_bytes()).hexdigest() == digest
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"


def test_certificate_round_trip_and_time(hf_model: Path) -> None:
    pki = make_pki()
    outcome = sign_model(hf_model, CertificateSigner(pki.leaf_key, pki.chain))
    bundle = _bundle_bytes(outcome.bundle)
    anchors = TrustAnchors(roots=((pki.root, ("release@example.com",)),))
    verified = verify_model(hf_model, bundle, anchors, STRICT, at=NOW)
    assert verified.signer.kind == "certificate" and verified.signer.time_source == "given"
    with pytest.raises(CertificateError, match="expired|not valid"):
        verify_model(hf_model, bundle, anchors, STRICT, at=NOW + timedelta(days=3650))
    wrong_name = TrustAnchors(roots=((pki.root, ("someone-else@example.com",)),))
    with pytest.raises(IdentityError):
        verify_model(hf_model, bundle, wrong_name, STRICT, at=NOW)
    with pytest.raises(CertificateError):
        verify_model(hf_model, bundle, TrustAnchors(roots=((make_pki().root, ()),)), STRICT, at=NOW)


def test_single_gguf_file_round_trip(gguf_model: Path) -> None:
    key = generate_private_key("ecdsa-p256")
    outcome = sign_model(gguf_model, KeySigner(key))
    verified = verify_model(gguf_model, _bundle_bytes(outcome.bundle), _key_anchors(key), STRICT)
    assert list(verified.manifest.files) == [gguf_model.name]


# --- tamper cases: each fails with its own reason naming the file -------------------------------------------


@pytest.fixture()
def signed(hf_model: Path):
    key = generate_private_key("ecdsa-p256")
    return hf_model, _bundle_bytes(sign_model(hf_model, KeySigner(key)).bundle), _key_anchors(key)


def test_changed_byte(signed) -> None:
    model, bundle, anchors = signed
    data = bytearray((model / "model.safetensors").read_bytes())
    data[-1] ^= 0x01
    (model / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(SubjectMismatchError, match="model.safetensors: content differs"):
        verify_model(model, bundle, anchors, LENIENT)


def test_missing_file(signed) -> None:
    model, bundle, anchors = signed
    (model / "tokenizer.json").unlink()
    with pytest.raises(SubjectMismatchError, match="tokenizer.json: missing"):
        verify_model(model, bundle, anchors, LENIENT)


def test_extra_file(signed) -> None:
    model, bundle, anchors = signed
    (model / "notes.txt").write_text("added later")
    with pytest.raises(SubjectMismatchError, match="notes.txt: not signed"):
        verify_model(model, bundle, anchors, LENIENT)
    assert verify_model(model, bundle, anchors, LENIENT, ignore=["notes.txt"])


def test_renamed_file(signed) -> None:
    model, bundle, anchors = signed
    (model / "config.json").rename(model / "config2.json")
    with pytest.raises(SubjectMismatchError, match="config2.json: renamed: this file was signed as config.json"):
        verify_model(model, bundle, anchors, LENIENT)


def test_symlink(signed) -> None:
    model, bundle, anchors = signed
    target = model.parent / "elsewhere.json"
    shutil.move(model / "config.json", target)
    (model / "config.json").symlink_to(target)
    with pytest.raises(SubjectMismatchError, match="config.json: symbolic links are not allowed"):
        verify_model(model, bundle, anchors, LENIENT)


@pytest.mark.parametrize(("name", "why"), [("../escape.json", r"'\.\.'"), ("/etc/passwd", "absolute")])
def test_hostile_names_in_a_validly_signed_bundle(hf_model: Path, name: str, why: str) -> None:
    key = generate_private_key("ecdsa-p256")
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": "0" * 64}}],
        "predicateType": "https://cyclonedx.org/bom",
        "predicate": {},
    }
    bundle = KeySigner(key).sign(IN_TOTO_PAYLOAD_TYPE, json.dumps(statement).encode())
    with pytest.raises(BundleFormatError, match=f"unsafe file name.*{why}"):
        verify_model(hf_model, _bundle_bytes(bundle), _key_anchors(key), LENIENT)


def test_other_key_fails(signed) -> None:
    model, bundle, _ = signed
    other = _key_anchors(generate_private_key("ecdsa-p256"))
    with pytest.raises((IdentityError, SignatureError)):
        verify_model(model, bundle, other, LENIENT)


def test_flipped_signature_fails(signed) -> None:
    import base64

    model, bundle, anchors = signed
    document = json.loads(bundle)
    sig = bytearray(base64.b64decode(document["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[10] ^= 0x01
    document["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    with pytest.raises(SignatureError):
        verify_model(model, json.dumps(document).encode(), anchors, LENIENT)


def test_empty_trust_fails_closed(signed) -> None:
    model, bundle, _ = signed
    with pytest.raises(Exception, match="no trusted"):
        verify_model(model, bundle, TrustAnchors(), LENIENT)


# --- policy and firewall --------------------------------------------------------------------------------------


def test_policy_requiring_sbom_refuses_oms_bundles(hf_model: Path) -> None:
    key = generate_private_key("ecdsa-p256")
    bundle = _bundle_bytes(sign_model(hf_model, KeySigner(key), format="oms").bundle)
    assert verify_model(hf_model, bundle, _key_anchors(key), LENIENT).manifest.format == "oms"
    with pytest.raises(PolicyViolation, match="requires a CycloneDX SBOM"):
        verify_model(hf_model, bundle, _key_anchors(key), STRICT)


def test_policy_weight_formats(gguf_model: Path) -> None:
    key = generate_private_key("ecdsa-p256")
    bundle = _bundle_bytes(sign_model(gguf_model, KeySigner(key)).bundle)
    only_safetensors = Policy(name="st-only", trust=TrustSection(allowed_weight_formats=("safetensors",)))
    with pytest.raises(PolicyViolation, match="gguf weights are not allowed by policy 'st-only'"):
        verify_model(gguf_model, bundle, _key_anchors(key), only_safetensors)


def test_pickle_is_never_signed(hf_model: Path) -> None:
    (hf_model / "pytorch_model.bin").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(RefusedFormatError, match="pytorch_model.bin: refused .*pickle.*safetensors"):
        sign_model(hf_model, KeySigner(generate_private_key("ecdsa-p256")))


def test_pickle_signed_elsewhere_is_refused_at_verification(hf_model: Path) -> None:
    """A bundle from another tool may well list a pickle; verification still refuses to pass it."""
    key = generate_private_key("ecdsa-p256")
    (hf_model / "extra.bin").write_bytes(b"\x80\x04K\x01.")  # pickle of the integer 1
    tree = scan_model(hf_model)
    payload = oms_statement(tree.name, hash_files(tree.root, tree.files), ())
    bundle = KeySigner(key).sign(IN_TOTO_PAYLOAD_TYPE, payload)
    with pytest.raises(PolicyViolation, match="extra.bin: refused"):
        verify_model(hf_model, _bundle_bytes(bundle), _key_anchors(key), LENIENT)


def test_time_is_reported(signed) -> None:
    model, bundle, anchors = signed
    when = datetime(2030, 1, 1, tzinfo=UTC)
    verified = verify_model(model, bundle, anchors, LENIENT, at=when)
    assert verified.signer.time == when and verified.signer.time_source == "given"
    assert verify_model(model, bundle, anchors, LENIENT).signer.time_source == "clock"
