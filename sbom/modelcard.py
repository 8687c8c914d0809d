"""What a model says about itself: architecture, size, quantization, context length, licence, file roles.

Facts come only from the artifact (GGUF metadata, ``config.json``, the README's front matter, safetensors
headers), never from a registry, so an SBOM describes the bytes that were hashed. Every value is
type-checked before use: these files are untrusted input, and a count that is not a count makes the file
malformed rather than a number to print. Sources are ranked: GGUF metadata, then the config, then the
README, then what the tensor headers imply; the first that states a fact wins.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO, TypeVar

import yaml

from sbom.errors import MalformedFileError
from sbom.formats import FileFormat
from sbom.gguf import GGUFFile, read_gguf
from sbom.inventory import ModelFile, ModelTree, open_regular_file
from sbom.roles import Role, file_roles
from sbom.safetensors import SafetensorsHeader, read_safetensors_header
from sbom.strict_json import load_strict_json

__all__ = ["ModelFacts", "extract_facts", "load_json"]

_JSON_LIMIT = 16 << 20  # bigger JSON files (huge tokenizer.json) get roles from their name only
_FRONT_MATTER_LIMIT = 64 << 10
_MAX_COUNT = 1 << 53  # above any real count of parameters, tokens, layers or positions

# llama.cpp's ``llama_ftype``: general.file_type -> the name ``llama-quantize`` gives that quantization.
_GGUF_FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16",
    36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE",
}  # fmt: skip

# One fact, under the key names that GGUF (after "{arch}.") and the model families' configs use for it.
_GGUF_COUNTS = {
    "context_length": "context_length",
    "vocab_size": "vocab_size",
    "hidden_size": "embedding_length",
    "layers": "block_count",
    "heads": "attention.head_count",
    "kv_heads": "attention.head_count_kv",
}
_CONFIG_COUNTS = {
    "context_length": ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"),
    "vocab_size": ("vocab_size",),
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "heads": ("num_attention_heads", "n_head"),
    "kv_heads": ("num_key_value_heads",),
}

# transformers class-name suffix -> the Hugging Face task the model serves.
_TASKS = (
    ("ForCausalLM", "text-generation"),
    ("ForMaskedLM", "fill-mask"),
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "question-answering"),
)

_FRONT_MATTER = re.compile(r"\A---\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What the artifact declares about the model; None where it says nothing."""

    name: str | None = None
    """The name the artifact gives itself (GGUF ``general.name``), not the folder's name."""
    family: str | None = None
    """The architecture family, e.g. ``llama`` (config ``model_type``, GGUF ``general.architecture``)."""
    architecture: str | None = None
    """The specific architecture, e.g. ``LlamaForCausalLM``."""
    task: str | None = None
    parameter_count: int | None = None
    quantization: str | None = None
    dtype: str | None = None
    context_length: int | None = None
    vocab_size: int | None = None
    hidden_size: int | None = None
    layers: int | None = None
    heads: int | None = None
    kv_heads: int | None = None
    license: str | None = None
    base_models: tuple[str, ...] = ()
    roles: Mapping[str, tuple[Role, ...]] = field(default_factory=dict)
    """The roles of each file, by relative path (see ``sbom.roles``)."""

    def summary(self) -> dict[str, Any]:
        """The stated facts as JSON values, for command output; roles are per file and left out."""
        facts = asdict(self)
        del facts["roles"]
        facts["base_models"] = list(self.base_models)
        return {k: v for k, v in facts.items() if v not in (None, [])}


def load_json(data: bytes, name: str) -> Any:
    """Parse a JSON file with the format firewall's strict rules; anything that is not JSON is malformed."""
    try:
        return load_strict_json(data.decode("utf-8"), name)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedFileError(name, f"not valid JSON: {exc}") from exc


def extract_facts(tree: ModelTree, formats: Mapping[str, FileFormat]) -> ModelFacts:
    """Read the facts and file roles that ``tree`` declares; ``formats`` comes from ``detect_format``."""
    roles: dict[str, tuple[Role, ...]] = {}
    ggufs: list[tuple[str, GGUFFile]] = []
    shards: dict[str, SafetensorsHeader] = {}
    indexes: dict[str, Any] = {}
    config: dict[str, Any] = {}
    readme: dict[str, Any] = {}
    for f in tree.files:
        fmt = formats[f.path]
        keys: Collection[str] = ()
        if fmt is FileFormat.GGUF:
            ggufs.append((f.path, gguf := _read(tree, f, read_gguf)))
            keys = gguf.metadata.keys()
        elif fmt is FileFormat.SAFETENSORS:
            shards[f.path] = _read(tree, f, read_safetensors_header)
        elif fmt is FileFormat.JSON and f.size <= _JSON_LIMIT:
            doc = load_json(_read(tree, f, lambda fh, size, name: fh.read(_JSON_LIMIT + 1)), f.path)
            keys = doc.keys() if isinstance(doc, dict) else ()
            if f.path == "config.json":
                config = _config_facts(doc)
            elif f.path.endswith(".safetensors.index.json"):
                indexes[f.path] = doc
        elif f.path == "README.md":
            readme = _readme_facts(_read(tree, f, lambda fh, size, name: fh.read(_FRONT_MATTER_LIMIT)))
        roles[f.path] = file_roles(f.path, fmt, keys)

    counted = _indexed_shards(indexes, shards)
    params = [g.parameter_count for _, g in ggufs] + [shards[p].parameter_count for p in counted]
    parts = [_gguf_facts(name, g) for name, g in ggufs[:1]]
    parts += [config, readme, {
        "parameter_count": sum(params) if params else None,
        "dtype": _dominant((t.dtype, t.n_elements) for p in counted for t in shards[p].tensors),
    }]
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if value not in (None, ()):
                merged.setdefault(key, value)
    return ModelFacts(**merged, roles=roles)


def _gguf_facts(name: str, g: GGUFFile) -> dict[str, Any]:
    md = g.metadata
    arch = _text(md, "general.architecture", name)
    counts = {fact: _count(md, f"{arch}.{key}", name) if arch else None for fact, key in _GGUF_COUNTS.items()}
    tokens = md.get("tokenizer.ggml.tokens")
    if counts["vocab_size"] is None and isinstance(tokens, list | tuple):
        counts["vocab_size"] = len(tokens)
    file_type = _count(md, "general.file_type", name)
    # Base models are read by key, not by trusting general.base_model.count.
    bases = sorted((int(m[1]), k) for k in md if (m := re.fullmatch(r"general\.base_model\.(\d{1,4})\.name", k)))
    return counts | {
        "name": _text(md, "general.name", name),
        "family": arch,
        "architecture": arch,
        "license": _text(md, "general.license", name),
        "base_models": tuple(_text(md, k, name) for _, k in bases),
        "quantization": (_GGUF_FILE_TYPES.get(file_type) if file_type is not None else None)
        or _dominant((t.type_name, t.n_elements) for t in g.tensors),
        "task": "text-generation" if "tokenizer.chat_template" in md else None,
    }


def _config_facts(config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise MalformedFileError("config.json", "must be a JSON object")
    text_config = config.get("text_config")
    scopes = [config, text_config] if isinstance(text_config, dict) else [config]
    facts: dict[str, Any] = {
        fact: next((v for s in scopes for k in keys if (v := _count(s, k, "config.json")) is not None), None)
        for fact, keys in _CONFIG_COUNTS.items()
    }
    architectures = config.get("architectures")
    if architectures is not None:
        if not isinstance(architectures, list) or not all(isinstance(a, str) for a in architectures):
            raise MalformedFileError("config.json", "architectures must be a list of strings")
        facts["architecture"] = architectures[0] if architectures else None
        facts["task"] = next((t for a in architectures for s, t in _TASKS if a.endswith(s)), None)
    facts["family"] = _text(config, "model_type", "config.json")
    facts["dtype"] = _text(config, "torch_dtype", "config.json") or _text(config, "dtype", "config.json")
    quant = config.get("quantization_config")
    if quant is not None:
        if not isinstance(quant, dict):
            raise MalformedFileError("config.json", "quantization_config must be an object")
        method = _text(quant, "quant_method", "config.json") or "unknown"
        bits = _count(quant, "bits", "config.json")
        facts["quantization"] = f"{method} {bits}-bit" if bits else method
    return facts


def _readme_facts(head: bytes) -> dict[str, Any]:
    """The model card's YAML front matter, as the Hugging Face Hub reads it."""
    match = _FRONT_MATTER.match(head.decode("utf-8", errors="replace"))
    if match is None:
        return {}
    try:
        meta = yaml.safe_load(match[1])
    except yaml.YAMLError as exc:
        raise MalformedFileError("README.md", f"front matter is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict):
        return {}
    licence = _text(meta, "license", "README.md")
    base = meta.get("base_model")
    bases = [base] if isinstance(base, str) else base or []
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise MalformedFileError("README.md", "base_model must be a string or a list of strings")
    return {
        "license": _text(meta, "license_name", "README.md") if licence == "other" else licence,
        "base_models": tuple(bases),
        "task": _text(meta, "pipeline_tag", "README.md"),
    }


def _indexed_shards(indexes: dict[str, Any], shards: Mapping[str, SafetensorsHeader]) -> list[str]:
    """The shards whose parameters count: those an index names, else every safetensors file.

    Checkpoints such as Mistral's ship the same weights twice (consolidated and sharded); counting both
    would double the size. A shard that an index names but the model lacks makes the index malformed.
    """
    named: set[str] = set()
    for path, index in indexes.items():
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise MalformedFileError(path, "weight_map must map tensor names to shard file names")
        folder = path.rpartition("/")[0]
        for shard in set(weight_map.values()):
            full = f"{folder}/{shard}" if folder else shard
            if full not in shards:
                raise MalformedFileError(path, f"names shard {shard!r}, which is not a safetensors file here")
            named.add(full)
    return sorted(named) if named else sorted(shards)


def _read(tree: ModelTree, f: ModelFile, reader: Callable[[BinaryIO, int, str], T]) -> T:
    """Open without following links (the file may have been swapped since the scan) and parse."""
    fh, size = open_regular_file(tree.root / f.path, f.path)
    with fh:
        return reader(fh, size, f.path)


def _text(mapping: Mapping[str, Any], key: str, name: str) -> str | None:
    value = mapping.get(key)
    if value is not None and not isinstance(value, str):
        raise MalformedFileError(name, f"{key} must be a string")
    return value or None


def _count(mapping: Mapping[str, Any], key: str, name: str) -> int | None:
    """A non-negative count; None if absent or per-layer (a list), which a single number cannot state."""
    value = mapping.get(key)
    if value is None or isinstance(value, list | tuple):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_COUNT:
        raise MalformedFileError(name, f"{key} must be a non-negative integer, not {str(value)[:40]!r}")
    return value


def _dominant(weighted: Iterable[tuple[str, int]]) -> str | None:
    """The label that covers the most elements, e.g. the dtype most parameters are stored in."""
    totals: Counter[str] = Counter()
    for label, n in weighted:
        totals[label] += n
    return max(sorted(totals), key=totals.__getitem__) if totals else None
