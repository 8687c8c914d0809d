"""The engine's verified load: only bytes that matched the signature reach the parsers."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pytest

from attest.bundle import KeySigner
from attest.errors import PolicyViolation, SubjectMismatchError
from attest.keys import generate_private_key
from attest.signing import sign_model
from attest.trust import TrustAnchors
from engine.errors import LoadRefused
from engine.verified_load import load_verified
from policies.schema import Policy, TrustSection
from sbom.formats import FileFormat
from sbom.gguf import parse_gguf

POLICY = Policy(name="test", trust=TrustSection())


@pytest.fixture()
def signed(hf_model: Path):
    key = generate_private_key("ecdsa-p256")
    bundle = json.dumps(sign_model(hf_model, KeySigner(key)).bundle).encode()
    return hf_model, bundle, TrustAnchors(keys=(key.public_key(),))


def test_loaded_bytes_are_the_signed_bytes_and_the_record_says_so(signed) -> None:
    model, bundle, anchors = signed
    artifact = load_verified(model, bundle, anchors, POLICY)
    for name, view in artifact.files.items():
        assert bytes(view) == (model / name).read_bytes()
        assert artifact.record.files[name] == hashlib.sha256(view).hexdigest()
        assert view.readonly
    assert artifact.formats["model.safetensors"] == FileFormat.SAFETENSORS
    record = artifact.record.to_json()
    assert record["decision"] == "loaded" and record["policy"] == "test" and record["signer"]["kind"] == "key"
    assert set(record["timings"]) == {"signature", "read_and_hash", "firewall"}


def test_a_file_rewritten_after_loading_cannot_reach_the_model(signed) -> None:
    model, bundle, anchors = signed
    artifact = load_verified(model, bundle, anchors, POLICY)
    before = bytes(artifact.files["model.safetensors"])
    (model / "model.safetensors").write_bytes(b"\x00" * len(before))
    assert bytes(artifact.files["model.safetensors"]) == before


def test_tampered_weight_byte_loads_nothing_and_says_why(signed) -> None:
    model, bundle, anchors = signed
    data = bytearray((model / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (model / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(LoadRefused, match="model.safetensors: content differs") as caught:
        load_verified(model, bundle, anchors, POLICY)
    assert isinstance(caught.value.__cause__, SubjectMismatchError)
    assert caught.value.record.decision == "refused" and caught.value.record.files == {}
    assert caught.value.exit_code == 1


def test_pickle_in_the_folder_is_refused(signed) -> None:
    model, bundle, anchors = signed
    (model / "pytorch_model.bin").write_bytes(pickle.dumps({"w": 1}))
    with pytest.raises(LoadRefused, match="pytorch_model.bin: not signed"):
        load_verified(model, bundle, anchors, POLICY)


def test_model_signed_by_an_untrusted_key_is_refused(signed) -> None:
    model, bundle, _ = signed
    stranger = TrustAnchors(keys=(generate_private_key("ecdsa-p256").public_key(),))
    with pytest.raises(LoadRefused, match="not trusted"):
        load_verified(model, bundle, stranger, POLICY)


def test_an_empty_bundle_is_refused(hf_model: Path) -> None:
    anchors = TrustAnchors(keys=(generate_private_key("ecdsa-p256").public_key(),))
    with pytest.raises(LoadRefused, match="bundle lacks mediaType"):
        load_verified(hf_model, b"{}", anchors, POLICY)


def test_policy_weight_formats_apply_to_the_verified_bytes(gguf_model: Path) -> None:
    key = generate_private_key("ecdsa-p256")
    bundle = json.dumps(sign_model(gguf_model, KeySigner(key)).bundle).encode()
    only_safetensors = Policy(name="st", trust=TrustSection(allowed_weight_formats=("safetensors",)))
    with pytest.raises(LoadRefused, match="gguf weights are not allowed") as caught:
        load_verified(gguf_model, bundle, TrustAnchors(keys=(key.public_key(),)), only_safetensors)
    assert isinstance(caught.value.__cause__, PolicyViolation)
    artifact = load_verified(gguf_model, bundle, TrustAnchors(keys=(key.public_key(),)), POLICY)
    assert parse_gguf(artifact.files[gguf_model.name], gguf_model.name).metadata["general.architecture"] == "llama"
