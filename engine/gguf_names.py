"""llama.cpp tensor names to Hugging Face names, for the Llama family (llama, Mistral, Qwen2, Qwen3).

The mapping is a closed table: a name it does not know is refused rather than passed through, so a
file cannot smuggle a tensor the model would silently ignore or load under a guessed name. Mistral
GGUFs carry ``general.architecture = llama`` (llama.cpp converts them with its Llama class).
"""

from __future__ import annotations

import re

from engine.errors import ModelConfigError, WeightError

__all__ = ["ARCHITECTURES", "PERMUTED_ARCHITECTURES", "ROPE_FREQS", "check_architecture", "hf_name"]

ARCHITECTURES = frozenset({"llama", "qwen2", "qwen3"})

PERMUTED_ARCHITECTURES = frozenset({"llama"})
"""llama.cpp's converter reorders the rows of Q and K (weights and biases) within each head for these,
from HF's half-split rotary layout to GGML's interleaved pairs; Qwen2/3 are stored unpermuted."""

ROPE_FREQS = "rope_freqs.weight"
"""Llama 3.1+ rope scaling factors. HF derives them from ``config.rope_scaling``, which llama.cpp does
not write, so the tensor is returned under this llama.cpp name: the model must use it or refuse."""

_GLOBAL = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
    ROPE_FREQS: ROPE_FREQS,
}

_LINEAR = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_NORM = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
}

_IGNORED = frozenset({"attn_rot_embd"})
"""Old converters stored each layer's rotary ``inv_freq``; it is a function of ``rope.freq_base``."""

_BLOCK = re.compile(r"blk\.(0|[1-9][0-9]{0,5})\.([a-z_]+)\.(weight|bias)")


def hf_name(gguf_name: str, block_count: int) -> str | None:
    """The HF name of a tensor, or None for one that is known to be redundant; WeightError otherwise."""
    if gguf_name in _GLOBAL:
        return _GLOBAL[gguf_name]
    match = _BLOCK.fullmatch(gguf_name)
    if match is None:
        raise WeightError(f"tensor {gguf_name!r} is not a Llama-family tensor the engine knows")
    index, part, kind = int(match[1]), match[2], match[3]
    if index >= block_count:
        raise WeightError(f"tensor {gguf_name!r} is in block {index}, but the model has {block_count} blocks")
    if part in _IGNORED:
        return None
    if part in _LINEAR:
        return f"model.layers.{index}.{_LINEAR[part]}.{kind}"
    if part in _NORM and kind == "weight":
        return f"model.layers.{index}.{_NORM[part]}.weight"
    raise WeightError(f"tensor {gguf_name!r} is not a Llama-family tensor the engine knows")


def check_architecture(arch: object) -> str:
    """The GGUF architecture, if it is one whose names and layout this module knows."""
    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise ModelConfigError(f"GGUF architecture {arch!r} is not supported (known: {sorted(ARCHITECTURES)})")
    return arch
