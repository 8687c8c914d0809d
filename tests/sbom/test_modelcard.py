"""Facts and file roles read from tiny real models, the real default model, and hostile configs."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest

from sbom.bom import describe_model
from sbom.errors import MalformedFileError
from sbom.formats import FileFormat
from sbom.inventory import scan_model
from sbom.modelcard import ModelFacts, load_json
from sbom.roles import Role, file_roles
from tests.builders import tiny_llama_tensors, write_safetensors

TINY_PARAMS = 32 * 8 + 8 + 4 * 8 * 8  # embeddings, norm, four attention projections
TINY_SHAPE = {"context_length": 256, "vocab_size": 32, "hidden_size": 8, "layers": 1, "heads": 2, "kv_heads": 1}


def _facts(model: Path) -> ModelFacts:
    return describe_model(scan_model(model))[1]


def _write_gguf(path: Path, **extra: object) -> Path:
    writer = gguf.GGUFWriter(str(path), "llama")
    for key, value in extra.items():
        if isinstance(value, int):
            writer.add_uint32(key.replace("__", "."), value)
        elif isinstance(value, str):
            writer.add_string(key.replace("__", "."), value)
        else:
            writer.add_array(key.replace("__", "."), value)  # type: ignore[arg-type]
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((4, 32), dtype=np.float16))
    writer.add_tensor("output_norm.weight", np.zeros(32, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_hugging_face_folder(hf_model: Path) -> None:
    facts = _facts(hf_model)
    assert facts.summary() == {
        "family": "llama",
        "architecture": "LlamaForCausalLM",
        "task": "text-generation",
        "parameter_count": TINY_PARAMS,
        "dtype": "float32",
    } | TINY_SHAPE
    assert facts.roles == {
        "config.json": (Role.CONFIG,),
        "model.safetensors": (Role.WEIGHTS,),
        "tokenizer.json": (Role.TOKENIZER,),
        "tokenizer_config.json": (Role.TOKENIZER, Role.CHAT_TEMPLATE),
    }


def test_gguf_file(gguf_model: Path) -> None:
    facts = _facts(gguf_model)
    assert facts.summary() == {
        "name": "tiny-llama",
        "family": "llama",
        "architecture": "llama",
        "task": "text-generation",
        "parameter_count": TINY_PARAMS,
        "quantization": "F32",
        "license": "apache-2.0",
    } | TINY_SHAPE
    assert facts.roles == {gguf_model.name: (Role.WEIGHTS, Role.CONFIG, Role.TOKENIZER, Role.CHAT_TEMPLATE)}


def test_gguf_file_type_base_models_and_per_layer_heads(tmp_path: Path) -> None:
    path = _write_gguf(
        tmp_path / "m.gguf",
        general__file_type=3,
        general__base_model__1__name="second",
        general__base_model__0__name="first",
        general__base_model__count=4_000_000_000,  # never trusted: the names are read by key
        llama__attention__head_count_kv=[1, 2, 2],
    )
    facts = _facts(path)
    assert facts.quantization == "Q4_1"
    assert facts.base_models == ("first", "second")
    assert facts.kv_heads is None
    assert facts.task is None  # no chat template: the artifact does not say what it is for
    assert facts.roles[path.name] == (Role.WEIGHTS, Role.CONFIG)


def test_gguf_without_file_type_names_the_dominant_tensor_type(tmp_path: Path) -> None:
    assert _facts(_write_gguf(tmp_path / "m.gguf")).quantization == "F16"


def test_gguf_metadata_of_the_wrong_type_is_malformed(tmp_path: Path) -> None:
    with pytest.raises(MalformedFileError, match="llama.context_length must be a non-negative integer"):
        _facts(_write_gguf(tmp_path / "m.gguf", llama__context_length="long"))


def test_only_indexed_shards_count_and_the_index_must_name_real_shards(hf_model: Path) -> None:
    tensors = tiny_llama_tensors()
    names = sorted(tensors)
    write_safetensors(hf_model / "model-00001-of-00002.safetensors", {n: tensors[n] for n in names[:3]})
    write_safetensors(hf_model / "model-00002-of-00002.safetensors", {n: tensors[n] for n in names[3:]})
    weight_map = {n: f"model-0000{1 + (i >= 3)}-of-00002.safetensors" for i, n in enumerate(names)}
    index = hf_model / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    # model.safetensors holds the same weights again (as Mistral's consolidated file does): not counted twice.
    facts = _facts(hf_model)
    assert facts.parameter_count == TINY_PARAMS
    assert facts.roles["model.safetensors.index.json"] == (Role.WEIGHTS_INDEX,)

    weight_map[names[0]] = "model-00003-of-00002.safetensors"
    index.write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(MalformedFileError, match="names shard 'model-00003-of-00002.safetensors'"):
        _facts(hf_model)
    index.write_text(json.dumps({"weight_map": ["not", "a", "map"]}))
    with pytest.raises(MalformedFileError, match="weight_map must map"):
        _facts(hf_model)


def test_readme_front_matter(hf_model: Path) -> None:
    readme = hf_model / "README.md"
    readme.write_text("---\nlicense: other\nlicense_name: llama3\nbase_model: [org/a, org/b]\n"
                      "pipeline_tag: text-generation\n---\n# Tiny\n")
    facts = _facts(hf_model)
    assert (facts.license, facts.base_models) == ("llama3", ("org/a", "org/b"))
    assert facts.roles["README.md"] == (Role.DOCUMENTATION,)

    readme.write_text("# No front matter\n\n---\nlicense: mit\n---\n")
    assert _facts(hf_model).license is None
    readme.write_text("---\nlicense: [unclosed\n---\n")
    with pytest.raises(MalformedFileError, match="front matter is not valid YAML"):
        _facts(hf_model)


def test_config_sections_quantization_and_tensor_dtype(hf_model: Path) -> None:
    config = {
        "architectures": ["LlavaForConditionalGeneration"],
        "model_type": "llava",
        "quantization_config": {"quant_method": "gptq", "bits": 4},
        "text_config": {"max_position_embeddings": 4096, "vocab_size": 32},
    }
    (hf_model / "config.json").write_text(json.dumps(config))
    facts = _facts(hf_model)
    assert (facts.family, facts.architecture, facts.task) == ("llava", "LlavaForConditionalGeneration", None)
    assert (facts.quantization, facts.context_length, facts.vocab_size) == ("gptq 4-bit", 4096, 32)
    assert facts.dtype == "F32"  # no torch_dtype: the dtype that holds the most parameters


@pytest.mark.parametrize(
    ("config", "why"),
    [
        ({"vocab_size": "big"}, "vocab_size must be a non-negative integer"),
        ({"vocab_size": -1}, "vocab_size must be a non-negative integer"),
        ({"num_hidden_layers": True}, "num_hidden_layers must be a non-negative integer"),
        ({"max_position_embeddings": 2**60}, "max_position_embeddings must be a non-negative integer"),
        ({"architectures": "LlamaForCausalLM"}, "architectures must be a list of strings"),
        ({"model_type": 7}, "model_type must be a string"),
        ({"quantization_config": ["gptq"]}, "quantization_config must be an object"),
        (["not", "an", "object"], "must be a JSON object"),
    ],
)
def test_config_values_are_checked(hf_model: Path, config: object, why: str) -> None:
    (hf_model / "config.json").write_text(json.dumps(config))
    with pytest.raises(MalformedFileError, match=why):
        _facts(hf_model)


@pytest.mark.parametrize(
    ("name", "fmt", "keys", "roles"),
    [
        ("sub/model-00001-of-00002.safetensors", FileFormat.SAFETENSORS, (), ("weights",)),
        ("model.safetensors.index.json", FileFormat.JSON, ("weight_map",), ("weights-index",)),
        ("generation_config.json", FileFormat.JSON, (), ("config",)),
        ("tokenizer.model", FileFormat.SENTENCEPIECE, (), ("tokenizer",)),
        ("processor_config.json", FileFormat.JSON, ("chat_template",), ("config", "chat-template")),
        ("chat_template.jinja", FileFormat.TEXT, (), ("chat-template",)),
        ("LICENSE", FileFormat.TEXT, (), ("documentation",)),
        ("merges.txt", FileFormat.TEXT, (), ("tokenizer",)),
        ("notes.txt", FileFormat.TEXT, (), ("other",)),
        ("m.gguf", FileFormat.GGUF, ("general.architecture", "tokenizer.chat_template.tool_use"),
         ("weights", "config", "chat-template")),
    ],
)
def test_roles(name: str, fmt: FileFormat, keys: tuple[str, ...], roles: tuple[str, ...]) -> None:
    assert file_roles(name, fmt, keys) == roles


def test_json_is_read_strictly() -> None:
    assert load_json(b'{"a": 1}', "x.json") == {"a": 1}
    for bad in (b'{"a": 1, "a": 2}', b'{"a": NaN}', b"\xff{}", b"{"):
        with pytest.raises(MalformedFileError, match=r"^x\.json: "):
            load_json(bad, "x.json")


@pytest.mark.slow
def test_real_default_model(default_model: Path) -> None:
    facts = _facts(default_model)
    assert (facts.family, facts.quantization, facts.context_length, facts.vocab_size) == ("llama", "Q4_1", 8192, 49152)
    assert (facts.layers, facts.hidden_size, facts.heads, facts.kv_heads) == (30, 576, 9, 3)
    assert 134_000_000 < (facts.parameter_count or 0) < 136_000_000
    assert facts.license == "apache-2.0"
    assert facts.roles[default_model.name] == (Role.WEIGHTS, Role.CONFIG, Role.TOKENIZER, Role.CHAT_TEMPLATE)
