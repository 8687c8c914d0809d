"""From verified bytes to a runnable model: configuration, weights, tokenizer and chat template.

Everything is built from ``VerifiedArtifact.files``, the buffers whose digests matched the signature;
nothing here opens a path. A model is one GGUF file, or a Hugging Face folder with config.json,
tokenizer.json and safetensors weights (sharded with an index, or not).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from engine.chat_template import ChatTemplate
from engine.config import ModelConfig, from_gguf_metadata, from_hf_config
from engine.errors import ChatTemplateError, LoadRefused, ModelConfigError
from engine.identity import EngineIdentity
from engine.models.llama import Transformer, build_model
from engine.tokenizer import Tokenizer
from engine.verified_load import LoadRecord, VerifiedArtifact
from engine.weights import load_gguf_tensors, load_safetensors_tensors, shard_files_from_index
from sbom.formats import FileFormat
from sbom.strict_json import load_strict_json

__all__ = ["LoadedModel", "build_loaded_model", "default_device"]


@dataclass(frozen=True, slots=True)
class LoadedModel:
    config: ModelConfig
    model: Transformer
    tokenizer: Tokenizer
    chat_template: ChatTemplate | None
    record: LoadRecord
    device: torch.device
    dtype: torch.dtype
    identity: EngineIdentity


def default_device() -> torch.device:
    """CUDA when there is a GPU, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_loaded_model(
    artifact: VerifiedArtifact, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> LoadedModel:
    """Build the model from verified buffers; bf16 on CUDA and fp32 on the CPU unless ``dtype`` says otherwise."""
    device = torch.device(device) if device is not None else default_device()
    dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
    weights = sorted(p for p, f in artifact.formats.items() if f in (FileFormat.GGUF, FileFormat.SAFETENSORS))
    kinds = {artifact.formats[p] for p in weights}
    if kinds == {FileFormat.GGUF} and len(weights) == 1:
        gguf, tensors = load_gguf_tensors(artifact.files[weights[0]], weights[0])
        config = from_gguf_metadata(gguf.metadata, tensor_names=[t.name for t in gguf.tensors])
        tokenizer = Tokenizer.from_gguf_metadata(gguf.metadata)
    elif kinds == {FileFormat.SAFETENSORS}:
        config = from_hf_config(_json(artifact, "config.json"))
        shards = (shard_files_from_index(artifact.files["model.safetensors.index.json"],
                                         "model.safetensors.index.json")
                  if "model.safetensors.index.json" in artifact.files else weights)
        tensors = load_safetensors_tensors({name: _file(artifact, name) for name in shards})
        has_config = "tokenizer_config.json" in artifact.files
        tokenizer_config = _json(artifact, "tokenizer_config.json") if has_config else None
        tokenizer = Tokenizer.from_tokenizer_json(bytes(_file(artifact, "tokenizer.json")), tokenizer_config)
    else:
        raise ModelConfigError(f"a model is one GGUF file or safetensors weights, not {weights or 'no weights'}")
    template = _checked_template(tokenizer, artifact.record) if tokenizer.chat_template else None
    model = build_model(config, tensors, device=device, dtype=dtype)
    return LoadedModel(config, model, tokenizer, template, artifact.record, device, dtype, artifact.identity)


def _checked_template(tokenizer: Tokenizer, record: LoadRecord) -> ChatTemplate:
    """Compile the template and render one plain turn now, so that a hostile or broken template is refused
    at load, with a refusal record for the audit log, rather than failing every request once serving."""
    try:
        template = ChatTemplate(tokenizer.chat_template or "")
        template.render([{"role": "user", "content": "Hello"}], **tokenizer.template_tokens)
    except ChatTemplateError as exc:
        refusal = replace(record, decision="refused", reason=f"chat template refused at load: {exc.reason}")
        raise LoadRefused(refusal) from exc
    return template


def _file(artifact: VerifiedArtifact, name: str) -> memoryview:
    if name not in artifact.files:
        raise ModelConfigError(f"the model has no {name}")
    return artifact.files[name]


def _json(artifact: VerifiedArtifact, name: str) -> dict[str, Any]:
    try:
        document = load_strict_json(bytes(_file(artifact, name)).decode("utf-8"), name)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelConfigError(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ModelConfigError(f"{name} must be a JSON object")
    return document
