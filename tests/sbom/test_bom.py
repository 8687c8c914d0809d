"""The ML-BOM: schema-valid, complete, deterministic; foreign and tampered BOMs read back strictly."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import sbom.bom
from sbom.bom import BomOptions, bom_file_digests, build_bom, describe_model, load_bom, render_bom, write_bom
from sbom.errors import BomError
from sbom.hashing import hash_files
from sbom.inventory import scan_model
from tests.builders import CHAT_TEMPLATE, tiny_llama_tensors, write_safetensors
from tests.conftest import shared_path

WHEN = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
ROLES = {
    "LICENSE": ["documentation"],
    "README.md": ["documentation"],
    "chat_template.jinja": ["chat-template"],
    "config.json": ["config"],
    "generation_config.json": ["config"],
    "model-00001-of-00002.safetensors": ["weights"],
    "model-00002-of-00002.safetensors": ["weights"],
    "model.safetensors.index.json": ["weights-index"],
    "notes/changes.txt": ["other"],
    "special_tokens_map.json": ["tokenizer"],
    "tokenizer.json": ["tokenizer"],
    "tokenizer_config.json": ["tokenizer", "chat-template"],
}


@pytest.fixture()
def full_model(hf_model: Path) -> Path:
    """The tiny model with sharded weights, an index and the other files a Hugging Face repo carries."""
    tensors = tiny_llama_tensors()
    names = sorted(tensors)
    (hf_model / "model.safetensors").unlink()
    weight_map = {n: f"model-0000{1 + (n in names[3:])}-of-00002.safetensors" for n in names}
    for shard in set(weight_map.values()):
        write_safetensors(hf_model / shard, {n: tensors[n] for n in names if weight_map[n] == shard})
    (hf_model / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (hf_model / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    (hf_model / "special_tokens_map.json").write_text('{"eos_token": "</s>"}')
    (hf_model / "generation_config.json").write_text('{"max_new_tokens": 16}')
    (hf_model / "README.md").write_text("---\nlicense: apache-2.0\nbase_model: org/base\n---\n# Tiny\n")
    (hf_model / "LICENSE").write_text("Apache License, Version 2.0\n")
    (hf_model / "notes").mkdir()
    (hf_model / "notes" / "changes.txt").write_text("first release\n")
    return hf_model


def _bom(model: Path, options: BomOptions | None = None) -> dict[str, Any]:
    tree = scan_model(model)
    formats, facts = describe_model(tree)
    digests = hash_files(tree.root, tree.files, sha512=True)
    return build_bom(tree, digests, formats, facts, options or BomOptions(), WHEN)


def _files(bom: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in bom["components"][0]["components"]}


def _props(component: dict[str, Any], name: str) -> list[str]:
    return [p["value"] for p in component["properties"] if p["name"] == name]


def test_bom_describes_every_file_and_the_model(full_model: Path) -> None:
    data = render_bom(_bom(full_model))
    assert b'"modelCard"' in data and b'"compositions"' in data and data.endswith(b"}\n")
    bom = load_bom(data, "model.cdx.json")
    assert (bom["bomFormat"], bom["specVersion"], bom["version"]) == ("CycloneDX", "1.6", 1)
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", bom["serialNumber"])
    assert bom["metadata"]["timestamp"] == "2025-01-02T03:04:05Z"
    (tool,) = bom["metadata"]["tools"]["components"]
    assert tool["name"] == "modelgate" and tool["version"]
    (model,) = bom["components"]
    assert (model["type"], model["name"]) == ("machine-learning-model", "tiny-llama")
    assert bom["metadata"]["component"] == {"type": "machine-learning-model", "name": "tiny-llama"}
    assert bom["compositions"] == [{"aggregate": "complete", "assemblies": [model["bom-ref"]]}]
    assert model["modelCard"]["modelParameters"] == {
        "task": "text-generation", "architectureFamily": "llama", "modelArchitecture": "LlamaForCausalLM"
    }
    card = {p["name"]: p["value"] for p in model["modelCard"]["properties"]}
    assert card["modelgate:parameter-count"] == str(32 * 8 + 8 + 4 * 8 * 8)
    assert card["modelgate:context-length"] == "256" and card["modelgate:vocabulary-size"] == "32"
    assert model["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert model["pedigree"] == {"ancestors": [{"type": "machine-learning-model", "name": "org/base"}]}

    files = _files(bom)
    assert {name: _props(c, "modelgate:role") for name, c in files.items()} == ROLES
    for name, component in files.items():
        raw = (full_model / name).read_bytes()
        assert component["type"] == "file"
        assert component["hashes"] == [
            {"alg": "SHA-256", "content": hashlib.sha256(raw).hexdigest()},
            {"alg": "SHA-512", "content": hashlib.sha512(raw).hexdigest()},
        ]
        assert _props(component, "modelgate:size") == [str(len(raw))]
    assert _props(files["tokenizer.json"], "modelgate:format") == ["json"]
    assert _props(files["model-00001-of-00002.safetensors"], "modelgate:format") == ["safetensors"]
    assert bom_file_digests(bom) == {n: c["hashes"][0]["content"] for n, c in files.items()}


def test_gguf_bom(gguf_model: Path) -> None:
    bom = load_bom(render_bom(_bom(gguf_model)), "gguf.cdx.json")
    (component,) = _files(bom).values()
    assert _props(component, "modelgate:role") == ["weights", "config", "tokenizer", "chat-template"]
    assert _props(component, "modelgate:format") == ["gguf"]


def test_options_override_what_the_model_declares(full_model: Path) -> None:
    options = BomOptions(supplier="ACME", author="Jane", version="1.2", license="MIT OR Apache-2.0", base_model="x/y")
    bom = _bom(full_model, options)
    model = bom["components"][0]
    assert (model["supplier"], model["authors"], model["version"]) == ({"name": "ACME"}, [{"name": "Jane"}], "1.2")
    identity = ("type", "name", "version", "supplier", "authors")
    assert bom["metadata"]["component"] == {key: model[key] for key in identity}
    assert model["licenses"] == [{"expression": "MIT OR Apache-2.0"}]
    assert model["pedigree"]["ancestors"][0]["name"] == "x/y"
    named = _bom(full_model, BomOptions(license="llama3"))["components"][0]
    assert named["licenses"] == [{"license": {"name": "llama3"}}]


def test_output_is_deterministic_but_for_the_serial_number(full_model: Path) -> None:
    first, second = _bom(full_model), _bom(full_model)
    assert first["serialNumber"] != second["serialNumber"]
    second["serialNumber"] = first["serialNumber"]
    assert render_bom(first) == render_bom(second)


def test_digests_must_cover_the_tree_with_both_algorithms(hf_model: Path) -> None:
    tree = scan_model(hf_model)
    formats, facts = describe_model(tree)
    with pytest.raises(BomError, match="no SHA-512"):
        build_bom(tree, hash_files(tree.root, tree.files), formats, facts, BomOptions())
    digests = hash_files(tree.root, tree.files, sha512=True)
    del digests["config.json"]
    with pytest.raises(BomError, match="do not cover exactly"):
        build_bom(tree, digests, formats, facts, BomOptions())


def test_an_invalid_bom_is_never_returned(hf_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sbom.bom, "_model_card", lambda facts: {"parameters": 1})
    with pytest.raises(BomError, match="the generated BOM: not valid CycloneDX 1.6"):
        _bom(hf_model)


@pytest.mark.parametrize("name", ["valid-machine-learning-1.6.json", "valid-machine-learning-1.7.json",
                                  "valid-machine-learning-considerations-env-1.6.json"])
def test_official_examples_load(name: str) -> None:
    path = shared_path("vectors", "cyclonedx", name)
    bom = load_bom(path.read_bytes(), name)
    assert bom["components"][0]["type"] == "machine-learning-model"
    assert bom_file_digests(bom) == {}


def _tampered(bom: dict[str, Any], change: str) -> bytes:
    if change == "hash":
        _files(bom)["config.json"]["hashes"][0]["content"] = "not-hex"
    elif change == "field":
        bom["components"][0]["weights"] = "elsewhere"
    elif change == "aggregate":
        bom["compositions"][0]["aggregate"] = "mostly"
    return render_bom(bom)


@pytest.mark.parametrize("change", ["hash", "field", "aggregate"])
def test_tampered_bom_is_rejected(hf_model: Path, change: str) -> None:
    with pytest.raises(BomError, match="not valid CycloneDX 1.6"):
        load_bom(_tampered(_bom(hf_model), change), "bom.json")


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b'{"bomFormat": "CycloneDX", "bomFormat": "CycloneDX", "specVersion": "1.6"}', "duplicate JSON key"),
        (b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": NaN}', "NaN is not allowed"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"<bom/>", "not valid JSON"),
        (b'{"spdxVersion": "SPDX-2.3"}', "not a CycloneDX document"),
        (b'["CycloneDX"]', "not a CycloneDX document"),
        (b'{"bomFormat": "CycloneDX", "specVersion": "1.4"}', "specVersion '1.4' is not supported"),
        (b'{"bomFormat": "CycloneDX", "specVersion": ["1.6"]}', "is not supported"),
        (b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": "one"}', "at version: 'one' is not"),
        (b"[" * 100_000, "nested too deeply"),
        (b" " * (32 << 20) + b"{}", "larger than 32 MiB"),
    ],
)
def test_bad_documents_are_rejected(data: bytes, why: str) -> None:
    with pytest.raises(BomError, match=re.escape(why)):
        load_bom(data, "bom.json")


def test_file_digests_refuse_unsafe_or_ambiguous_names(hf_model: Path) -> None:
    bom = _bom(hf_model)
    files = bom["components"][0]["components"]
    files[0]["hashes"][0]["content"] = files[0]["hashes"][0]["content"].upper()
    assert bom_file_digests(bom)[files[0]["name"]].islower()
    files[1]["name"] = files[0]["name"]
    with pytest.raises(BomError, match="twice or with an ambiguous SHA-256"):
        bom_file_digests(bom)
    files[1]["name"] = "../../etc/passwd"
    with pytest.raises(BomError, match="unsafe file name"):
        bom_file_digests(bom)


def test_write_bom_replaces_atomically(hf_model: Path, tmp_path: Path) -> None:
    bom = _bom(hf_model)
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "model.cdx.json"
    out.write_text("old")
    write_bom(bom, out)
    assert out.read_bytes() == render_bom(bom)
    with pytest.raises(BomError, match="cannot write"):
        write_bom(bom, folder / "missing" / "model.cdx.json")
    (folder / "sub").mkdir()
    with pytest.raises(BomError, match="cannot write"):
        write_bom(bom, folder / "sub")
    assert sorted(p.name for p in folder.iterdir()) == ["model.cdx.json", "sub"]
