"""The ML-BOM in brief, as a model-load record keeps it: from modelgate's own BOMs, official examples, and junk."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sbom.bom import BomOptions, build_bom, describe_model, load_bom, render_bom
from sbom.hashing import hash_files
from sbom.inventory import scan_model
from sbom.summary import summarize_bom
from tests.conftest import shared_path


def test_a_modelgate_bom_in_brief(hf_model: Path) -> None:
    tree = scan_model(hf_model)
    formats, facts = describe_model(tree)
    bom = build_bom(tree, hash_files(tree.root, tree.files, sha512=True), formats, facts,
                    BomOptions(supplier="Acme", version="1.2", license="apache-2.0"))
    summary = summarize_bom(bom)
    assert (summary.name, summary.version, summary.supplier) == (hf_model.name, "1.2", "Acme")
    assert summary.licenses == ("Apache-2.0",) and summary.files == len(tree.files)
    assert summary.formats == tuple(sorted({str(f) for f in formats.values()})) and "safetensors" in summary.formats
    assert summary.architecture == "LlamaForCausalLM" and summary.parameters is not None
    assert summary.serial == bom["serialNumber"] and summary.spec_version == "1.6"
    assert summary.sha256 == hashlib.sha256(render_bom(bom)).hexdigest()  # sha256sum of `modelgate sbom -o`
    assert json.loads(json.dumps(summary.to_json()))["licenses"] == ["Apache-2.0"]


def test_an_official_example_in_brief() -> None:
    path = shared_path("vectors", "cyclonedx", "valid-machine-learning-1.6.json")
    summary = summarize_bom(load_bom(path.read_bytes(), path.name))
    assert (summary.name, summary.version, summary.files) == ("stable-diffusion", "1.4", 0)
    assert summary.architecture == "The architecture of the model." and summary.formats == ()
    assert summary.serial == "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79"


def test_fields_of_the_wrong_shape_are_left_out_not_fatal() -> None:
    summary = summarize_bom({"metadata": "x", "serialNumber": 7, "components": [
        "junk", {"type": "machine-learning-model", "name": ["a"], "licenses": [{"license": "MIT"}, {"expression": 3},
                                                                              {"license": {"name": "llama3"}}],
                 "modelCard": {"properties": "none"}, "components": {"type": "file"}},
        {"type": "file", "properties": [{"name": "modelgate:format", "value": 9}]}]})
    assert (summary.name, summary.serial, summary.licenses, summary.files) == (None, None, ("llama3",), 1)
    assert summary.formats == () and len(summary.sha256) == 64
