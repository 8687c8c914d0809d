"""The engine's verified load: only bytes that matched the signature reach the parsers."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pytest

from attest.bundle import KeySigner
from attest.errors import AttestationRefused, PolicyViolation, SubjectMismatchError
from attest.keys import generate_private_key
from attest.signing import sign_model
from attest.tee.binding import Binding
from attest.tee.configfs import ConfigfsTsmProvider
from attest.tee.evidence import EvidenceItem, ReplayProvider
from attest.tee.simulated import SimulatedProvider
from attest.trust import TrustAnchors
from engine.errors import LoadRefused
from engine.identity import EngineIdentity
from engine.verified_load import load_verified
from policies.loader import shipped_policy
from policies.schema import TrustSection
from sbom.formats import FileFormat
from sbom.gguf import parse_gguf
from tests.builders import simulated_tee, simulated_tee_policy

POLICY = simulated_tee_policy().model_copy(update={"name": "test", "trust": TrustSection()})


@pytest.fixture()
def signed(hf_model: Path):
    key = generate_private_key("ecdsa-p256")
    bundle = json.dumps(sign_model(hf_model, KeySigner(key)).bundle).encode()
    return hf_model, bundle, TrustAnchors(keys=(key.public_key(),))


def test_loaded_bytes_are_the_signed_bytes_and_the_record_says_so(signed) -> None:
    model, bundle, anchors = signed
    artifact = load_verified(model, bundle, anchors, POLICY, **simulated_tee())
    for name, view in artifact.files.items():
        assert bytes(view) == (model / name).read_bytes()
        assert artifact.record.files[name] == hashlib.sha256(view).hexdigest()
        assert view.readonly
    assert artifact.formats["model.safetensors"] == FileFormat.SAFETENSORS
    record = artifact.record.to_json()
    assert record["decision"] == "loaded" and record["policy"] == "test" and record["signer"]["kind"] == "key"
    assert set(record["timings"]) == {"signature", "read_and_hash", "firewall", "attestation"}
    assert record["attestation"]["accepted"] and record["attestation"]["simulated"]
    assert record["attestation"]["binding"]["manifest_digest"] == record["manifest_digest"]
    assert record["evidence"]["items"][0]["platform"] == "simulated"
    sbom = record["sbom"]  # the signed BOM in brief: which model, which licence, which BOM
    assert sbom["files"] == len(record["files"]) and "safetensors" in sbom["formats"]
    assert sbom["serial"] == artifact.manifest.bom["serialNumber"] and len(sbom["sha256"]) == 64


def test_a_file_rewritten_after_loading_cannot_reach_the_model(signed) -> None:
    model, bundle, anchors = signed
    artifact = load_verified(model, bundle, anchors, POLICY, **simulated_tee())
    before = bytes(artifact.files["model.safetensors"])
    (model / "model.safetensors").write_bytes(b"\x00" * len(before))
    assert bytes(artifact.files["model.safetensors"]) == before


def test_tampered_weight_byte_loads_nothing_and_says_why(signed) -> None:
    model, bundle, anchors = signed
    data = bytearray((model / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (model / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(LoadRefused, match="model.safetensors: content differs") as caught:
        load_verified(model, bundle, anchors, POLICY, **simulated_tee())
    assert isinstance(caught.value.__cause__, SubjectMismatchError)
    assert caught.value.record.decision == "refused" and caught.value.record.files == {}
    assert caught.value.exit_code == 1
    assert caught.value.record.sbom is not None  # the signature held: the refusal names the BOM it vouched for


def test_pickle_in_the_folder_is_refused(signed) -> None:
    model, bundle, anchors = signed
    (model / "pytorch_model.bin").write_bytes(pickle.dumps({"w": 1}))
    with pytest.raises(LoadRefused, match="pytorch_model.bin: not signed"):
        load_verified(model, bundle, anchors, POLICY, **simulated_tee())


def test_model_signed_by_an_untrusted_key_is_refused(signed) -> None:
    model, bundle, _ = signed
    stranger = TrustAnchors(keys=(generate_private_key("ecdsa-p256").public_key(),))
    with pytest.raises(LoadRefused, match="not trusted") as caught:
        load_verified(model, bundle, stranger, POLICY, **simulated_tee())
    assert caught.value.record.sbom is None  # an unverified BOM says nothing


def test_an_empty_bundle_is_refused(hf_model: Path) -> None:
    anchors = TrustAnchors(keys=(generate_private_key("ecdsa-p256").public_key(),))
    with pytest.raises(LoadRefused, match="bundle lacks mediaType"):
        load_verified(hf_model, b"{}", anchors, POLICY, **simulated_tee())


def test_policy_weight_formats_apply_to_the_verified_bytes(gguf_model: Path) -> None:
    key = generate_private_key("ecdsa-p256")
    bundle = json.dumps(sign_model(gguf_model, KeySigner(key)).bundle).encode()
    only_safetensors = POLICY.model_copy(update={"trust": TrustSection(allowed_weight_formats=("safetensors",))})
    with pytest.raises(LoadRefused, match="gguf weights are not allowed") as caught:
        load_verified(gguf_model, bundle, TrustAnchors(keys=(key.public_key(),)), only_safetensors, **simulated_tee())
    assert isinstance(caught.value.__cause__, PolicyViolation)
    artifact = load_verified(gguf_model, bundle, TrustAnchors(keys=(key.public_key(),)), POLICY, **simulated_tee())
    assert parse_gguf(artifact.files[gguf_model.name], gguf_model.name).metadata["general.architecture"] == "llama"


def test_a_production_policy_refuses_the_simulated_tee_and_loads_nothing(signed) -> None:
    model, bundle, anchors = signed
    production = shipped_policy("production").model_copy(update={"trust": TrustSection()})
    with pytest.raises(LoadRefused, match="simulated evidence") as caught:
        load_verified(model, bundle, anchors, production, **simulated_tee())
    record = caught.value.record
    assert isinstance(caught.value.__cause__, AttestationRefused)
    assert record.decision == "refused" and record.files == {} and record.attestation is not None
    assert record.attestation.simulated and not record.attestation.acceptable
    assert record.to_json()["evidence"]["provider"] == "simulated"


def test_evidence_from_an_earlier_load_is_refused(signed, tmp_path: Path) -> None:
    model, bundle, anchors = signed
    first = load_verified(model, bundle, anchors, POLICY, **simulated_tee())
    assert first.record.attestation is not None
    first.record.attestation.bundle.write(tmp_path / "evidence.json")
    replay = {"tee": ReplayProvider(tmp_path / "evidence.json"), "identity": EngineIdentity.generate()}
    with pytest.raises(LoadRefused, match="simulated: report data [0-9a-f]+ does not match the binding"):
        load_verified(model, bundle, anchors, POLICY, **replay)


class _OtherModel:
    """A TEE that answers with evidence bound to another model's manifest."""

    name = "other-model"

    def __init__(self, identity: EngineIdentity) -> None:
        self.identity, self.simulated = identity, SimulatedProvider()

    def collect(self, report_data: bytes) -> tuple[EvidenceItem, ...]:
        other = Binding(b"\1" * 32, "ab" * 32, self.identity.public_der)
        return self.simulated.collect(other.report_data())


def test_evidence_bound_to_another_model_is_refused(signed) -> None:
    model, bundle, anchors = signed
    identity = EngineIdentity.generate()
    with pytest.raises(LoadRefused, match="made for another load, model or process"):
        load_verified(model, bundle, anchors, POLICY, tee=_OtherModel(identity), identity=identity)


def test_a_tee_that_cannot_answer_refuses_the_load(signed, tmp_path: Path) -> None:
    model, bundle, anchors = signed
    missing = ConfigfsTsmProvider(tmp_path / "no-tsm")
    with pytest.raises(LoadRefused, match="no evidence from the configfs-tsm provider: cannot create"):
        load_verified(model, bundle, anchors, POLICY, tee=missing, identity=EngineIdentity.generate())
