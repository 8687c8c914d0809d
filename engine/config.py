"""The shape of a Llama-family decoder, read from a config.json or from GGUF metadata.

Both sources are untrusted: every value is type-checked and bounded here, so that a hostile file cannot make
us build (or allocate a KV cache for) a model of absurd size, and everything downstream can trust the numbers.

    >>> cfg = from_hf_config({"architectures": ["LlamaForCausalLM"], "vocab_size": 32, "hidden_size": 64,
    ...     "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 256})
    >>> cfg.head_dim, cfg.num_kv_heads
    (16, 4)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import ModelConfigError

__all__ = ["LIMITS", "ModelConfig", "RopeScaling", "from_gguf_metadata", "from_hf_config"]

LIMITS: dict[str, int] = {
    "vocab_size": 1 << 20,
    "hidden_size": 32_768,
    "intermediate_size": 131_072,
    "num_layers": 256,
    "num_heads": 256,
    "head_dim": 1024,
    "max_position_embeddings": 1 << 21,
}
"""Upper bounds, each well above the largest supported model (Llama 3.1 405B: hidden 16384, 126 layers)."""

MAX_PARAMETERS = 1_000_000_000_000
"""Bounds the product of the sizes, which the per-field limits alone leave at petabytes."""

_HF_ARCHITECTURES = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral", "Qwen2ForCausalLM": "qwen2"}
_GGUF_ARCHITECTURES = ("llama", "qwen2")  # llama.cpp writes Mistral models as "llama"
_FIELDS = ("hidden_size", "num_heads", "intermediate_size", "num_layers", "num_kv_heads", "head_dim", "rope_theta",
           "max_position_embeddings")
_HF_KEYS = dict(zip(_FIELDS, ("hidden_size", "num_attention_heads", "intermediate_size", "num_hidden_layers",
                              "num_key_value_heads", "head_dim", "rope_theta", "max_position_embeddings"), strict=True))
_GGUF_KEYS = dict(zip(_FIELDS, ("embedding_length", "attention.head_count", "feed_forward_length", "block_count",
                                "attention.head_count_kv", "rope.dimension_count", "rope.freq_base",
                                "context_length"), strict=True))


@dataclass(frozen=True, slots=True)
class RopeScaling:
    """Llama 3.1's frequency-dependent RoPE scaling (``rope_type: llama3``), the only kind supported."""

    factor: float
    low_freq_factor: float
    high_freq_factor: float
    original_max_position_embeddings: int


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """A validated decoder shape; constructing one with out-of-range values raises ModelConfigError."""

    architecture: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    max_position_embeddings: int
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    """Biases on the q, k and v projections (Qwen2); never on the output projection."""
    rope_scaling: RopeScaling | None = None
    sliding_window: int | None = None
    """Mistral's attention window: a query sees only the keys of the last ``sliding_window`` positions."""

    def __post_init__(self) -> None:
        for name, limit in LIMITS.items():
            if not 1 <= (value := getattr(self, name)) <= limit:
                raise ModelConfigError(f"{name} = {value} is outside 1..{limit}")
        if self.num_kv_heads < 1 or self.num_heads % self.num_kv_heads:
            raise ModelConfigError(f"num_heads {self.num_heads} is not a multiple of num_kv_heads {self.num_kv_heads}")
        if self.head_dim % 2:
            raise ModelConfigError(f"head_dim {self.head_dim} is odd; rotary embeddings need pairs")
        if not 0 < self.rms_norm_eps < 1:
            raise ModelConfigError(f"rms_norm_eps {self.rms_norm_eps} is outside (0, 1)")
        if not 1 <= self.rope_theta <= 1e12:
            raise ModelConfigError(f"rope_theta {self.rope_theta} is outside [1, 1e12]")
        if self.sliding_window is not None and self.sliding_window < 1:
            raise ModelConfigError(f"sliding_window {self.sliding_window} is not positive")
        if (s := self.rope_scaling) is not None and not (
            1 <= s.factor <= 1024 and 0 < s.low_freq_factor < s.high_freq_factor <= 1024
            and 1 <= s.original_max_position_embeddings <= self.max_position_embeddings
        ):
            raise ModelConfigError(f"rope_scaling {s} is out of range")
        if self.parameter_count > MAX_PARAMETERS:
            raise ModelConfigError(f"{self.parameter_count:,} parameters exceed the limit of {MAX_PARAMETERS:,}")

    @property
    def parameter_count(self) -> int:
        attention = self.hidden_size * self.head_dim * (2 * self.num_heads + 2 * self.num_kv_heads)
        layer = attention + 3 * self.hidden_size * self.intermediate_size + 2 * self.hidden_size
        embeddings = self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)
        return self.num_layers * layer + embeddings + self.hidden_size


def from_hf_config(config: Mapping[str, Any]) -> ModelConfig:
    """Read a Hugging Face ``config.json`` dict; absent optional fields take transformers' defaults."""
    field = _Reader(config, "config.json")
    architectures = config.get("architectures")
    if not (isinstance(architectures, list) and len(architectures) == 1 and isinstance(architectures[0], str)):
        raise ModelConfigError(f"config.json 'architectures' must name exactly one class, not {architectures!r}")
    if (arch := _HF_ARCHITECTURES.get(architectures[0])) is None:
        raise ModelConfigError(f"architecture {architectures[0]!r} is not supported "
                               f"(supported: {', '.join(_HF_ARCHITECTURES)})")
    for unsupported in ("mlp_bias", "attention_bias") if arch == "llama" else ():
        if config.get(unsupported):
            raise ModelConfigError(f"config.json {unsupported!r}: Llama biases are not supported")
    if arch == "qwen2" and config.get("use_sliding_window") is True:
        # Qwen2 slides only in layers from max_window_layers on; one window for every layer would be wrong.
        raise ModelConfigError("config.json 'use_sliding_window': Qwen2's per-layer sliding window is not supported")
    window = field.integer("sliding_window", None) if arch == "mistral" else None
    return ModelConfig(
        architecture=arch,
        vocab_size=field.integer("vocab_size"),
        **_shared_fields(field, _HF_KEYS),
        rms_norm_eps=field.number("rms_norm_eps", 1e-6),
        tie_word_embeddings=field.flag("tie_word_embeddings", False),
        attention_bias=arch == "qwen2",
        rope_scaling=_hf_rope_scaling(config.get("rope_scaling")),
        sliding_window=window,
    )


def from_gguf_metadata(metadata: Mapping[str, Any], tensor_names: Iterable[str] | None = None) -> ModelConfig:
    """Read GGUF metadata; embeddings are tied when ``tensor_names`` lacks ``output.weight``.

    Without ``tensor_names`` the model is taken as untied, and loading then fails closed if it is not.
    """
    arch = metadata.get("general.architecture")
    if arch not in _GGUF_ARCHITECTURES:
        raise ModelConfigError(f"GGUF architecture {arch!r} is not supported (supported: {_GGUF_ARCHITECTURES})")
    names = None if tensor_names is None else set(tensor_names)
    if names is not None and "rope_freqs.weight" in names:
        raise ModelConfigError("GGUF rope_freqs.weight (Llama 3.1 RoPE scaling as a tensor) is not supported yet")
    field = _Reader(metadata, "GGUF metadata", prefix=f"{arch}.")
    scaling = metadata.get(f"{arch}.rope.scaling.type", "none")
    if scaling != "none":
        raise ModelConfigError(f"GGUF RoPE scaling type {scaling!r} is not supported")
    tokens = metadata.get("tokenizer.ggml.tokens")
    if not isinstance(tokens, tuple | list):
        raise ModelConfigError("GGUF metadata lacks the vocabulary 'tokenizer.ggml.tokens'")
    return ModelConfig(
        architecture=arch,
        vocab_size=len(tokens),
        **_shared_fields(field, _GGUF_KEYS),
        rms_norm_eps=field.number("attention.layer_norm_rms_epsilon"),
        tie_word_embeddings=names is not None and "output.weight" not in names,
        attention_bias=arch == "qwen2",
    )


def _shared_fields(field: _Reader, keys: Mapping[str, str]) -> dict[str, Any]:
    """The sizes both sources carry, under each source's names, with transformers' and llama.cpp's defaults."""
    hidden, heads = field.integer(keys["hidden_size"]), field.integer(keys["num_heads"])
    return {"hidden_size": hidden, "num_heads": heads,
            "intermediate_size": field.integer(keys["intermediate_size"]),
            "num_layers": field.integer(keys["num_layers"]),
            "num_kv_heads": field.integer(keys["num_kv_heads"], heads),
            "head_dim": field.integer(keys["head_dim"], None) or _split(hidden, heads),
            "rope_theta": field.number(keys["rope_theta"], 10_000.0),
            "max_position_embeddings": field.integer(keys["max_position_embeddings"])}


def _hf_rope_scaling(raw: Any) -> RopeScaling | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ModelConfigError(f"config.json 'rope_scaling' must be an object, not {raw!r}")
    kind = raw.get("rope_type", raw.get("type"))
    if kind == "default":
        return None
    if kind != "llama3":
        raise ModelConfigError(f"RoPE scaling type {kind!r} is not supported (supported: llama3)")
    field = _Reader(raw, "config.json rope_scaling")
    return RopeScaling(
        factor=field.number("factor"),
        low_freq_factor=field.number("low_freq_factor"),
        high_freq_factor=field.number("high_freq_factor"),
        original_max_position_embeddings=field.integer("original_max_position_embeddings"),
    )


def _split(hidden: int, heads: int) -> int:
    if heads < 1 or hidden % heads:
        raise ModelConfigError(f"hidden size {hidden} is not divisible by {heads} attention heads")
    return hidden // heads


_REQUIRED: Any = object()


class _Reader:
    """Typed access to an untrusted mapping: booleans are not integers, and numbers must be finite."""

    def __init__(self, raw: Mapping[str, Any], source: str, prefix: str = "") -> None:
        self.raw, self.source, self.prefix = raw, source, prefix

    def _get(self, key: str, default: Any) -> Any:
        value = self.raw.get(self.prefix + key)
        value = default if value is None else value  # JSON null means "use the default", as in transformers
        if value is _REQUIRED:
            raise ModelConfigError(f"{self.source} lacks {self.prefix + key!r}")
        return value

    def _fail(self, key: str, value: Any, want: str) -> ModelConfigError:
        return ModelConfigError(f"{self.source} {self.prefix + key!r} must be {want}, not {value!r:.80}")

    def integer(self, key: str, default: int | None = _REQUIRED) -> Any:
        value = self._get(key, default)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise self._fail(key, value, "an integer")

    def number(self, key: str, default: float = _REQUIRED) -> float:
        value = self._get(key, default)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise self._fail(key, value, "a finite number")

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if isinstance(value, bool):
            return value
        raise self._fail(key, value, "true or false")
