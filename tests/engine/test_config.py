"""Model configuration from config.json and GGUF metadata, including hostile values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import transformers

from engine.config import RopeScaling, from_gguf_metadata, from_hf_config
from engine.errors import ModelConfigError
from sbom.gguf import parse_gguf
from tests.builders import tiny_gguf

SMALL = {"vocab_size": 96, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128}


def hf_dict(config: Any, architecture: str) -> dict[str, Any]:
    return config.to_dict() | {"architectures": [architecture]}


def test_llama_with_llama3_rope_scaling_and_tied_embeddings() -> None:
    rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 32}
    config = from_hf_config(hf_dict(transformers.LlamaConfig(**SMALL, rope_scaling=rope, rope_theta=5e5,
                                                             tie_word_embeddings=True), "LlamaForCausalLM"))
    assert (config.architecture, config.num_layers, config.num_heads, config.num_kv_heads, config.head_dim) == (
        "llama", 2, 4, 2, 16)
    assert config.rope_scaling == RopeScaling(8.0, 1.0, 4.0, 32)
    assert (config.rope_theta, config.tie_word_embeddings, config.attention_bias) == (5e5, True, False)


def test_mistral_records_its_window_and_qwen2_has_qkv_bias() -> None:
    mistral = from_hf_config(hf_dict(transformers.MistralConfig(**SMALL, sliding_window=4096), "MistralForCausalLM"))
    assert (mistral.architecture, mistral.sliding_window, mistral.attention_bias) == ("mistral", 4096, False)
    qwen2 = from_hf_config(hf_dict(transformers.Qwen2Config(**SMALL), "Qwen2ForCausalLM"))
    assert (qwen2.architecture, qwen2.attention_bias, qwen2.sliding_window) == ("qwen2", True, None)


def test_optional_fields_take_transformers_defaults() -> None:
    config = from_hf_config({"architectures": ["LlamaForCausalLM"], "num_key_value_heads": None, "head_dim": None}
                            | {k: v for k, v in SMALL.items() if k != "num_key_value_heads"})
    assert (config.num_kv_heads, config.head_dim, config.rms_norm_eps, config.rope_theta) == (4, 16, 1e-6, 1e4)
    assert not config.tie_word_embeddings and config.rope_scaling is None


@pytest.mark.parametrize(("change", "reason"), [
    ({"architectures": ["GPT2LMHeadModel"]}, "architecture 'GPT2LMHeadModel' is not supported"),
    ({"architectures": ["LlamaForCausalLM", "MistralForCausalLM"]}, "exactly one class"),
    ({"hidden_size": 1 << 40}, "hidden_size = 1099511627776 is outside"),
    ({"num_hidden_layers": 1_000_000}, "num_layers = 1000000 is outside"),
    ({"vocab_size": 10**12}, "vocab_size"),
    ({"max_position_embeddings": 1 << 40}, "max_position_embeddings"),
    ({"num_hidden_layers": 0}, "num_layers = 0"),
    ({"num_attention_heads": 7}, "hidden size 64 is not divisible by 7 attention heads"),
    ({"num_key_value_heads": 3}, "num_heads 4 is not a multiple of num_kv_heads 3"),
    ({"head_dim": 15}, "head_dim 15 is odd"),
    ({"hidden_size": 16384, "num_attention_heads": 128, "intermediate_size": 131072, "num_hidden_layers": 256},
     "parameters exceed the limit"),
    ({"hidden_size": "64"}, "'hidden_size' must be an integer, not '64'"),
    ({"num_hidden_layers": True}, "must be an integer"),
    ({"rope_theta": float("nan")}, "'rope_theta' must be a finite number"),
    ({"rms_norm_eps": -1.0}, "rms_norm_eps -1.0 is outside"),
    ({"tie_word_embeddings": "yes"}, "true or false"),
    ({"intermediate_size": None}, "lacks 'intermediate_size'"),
    ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "RoPE scaling type 'yarn' is not supported"),
    ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, "lacks 'low_freq_factor'"),
    ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 1.0,
                       "original_max_position_embeddings": 32}}, "rope_scaling RopeScaling"),
    ({"attention_bias": True}, "Llama biases are not supported"),
])
def test_hostile_or_unsupported_configs_are_refused_with_a_reason(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(ModelConfigError) as err:
        from_hf_config({"architectures": ["LlamaForCausalLM"], **SMALL} | change)
    assert reason in err.value.reason


def test_gguf_metadata_of_the_tiny_builder_file(tmp_path: Path) -> None:
    """The builder's file lacks keys llama.cpp requires; with them added it reads, tied as it has no output."""
    parsed = parse_gguf(tiny_gguf(tmp_path / "tiny.gguf").read_bytes(), "tiny.gguf")
    names = [t.name for t in parsed.tensors]
    with pytest.raises(ModelConfigError, match="lacks 'llama.feed_forward_length'"):
        from_gguf_metadata(parsed.metadata, names)
    metadata = parsed.metadata | {"llama.feed_forward_length": 16, "llama.attention.layer_norm_rms_epsilon": 1e-5}
    config = from_gguf_metadata(metadata, names)
    assert (config.architecture, config.vocab_size, config.hidden_size, config.num_layers) == ("llama", 32, 8, 1)
    assert (config.num_heads, config.num_kv_heads, config.head_dim, config.max_position_embeddings) == (2, 1, 4, 256)
    assert config.tie_word_embeddings
    assert not from_gguf_metadata(metadata, names + ["output.weight"]).tie_word_embeddings
    with pytest.raises(ModelConfigError, match="GGUF architecture 'gpt2' is not supported"):
        from_gguf_metadata(metadata | {"general.architecture": "gpt2"}, names)
    with pytest.raises(ModelConfigError, match="rope_freqs.weight"):
        from_gguf_metadata(metadata, names + ["rope_freqs.weight"])
    with pytest.raises(ModelConfigError, match="hidden_size = 4294967296"):
        from_gguf_metadata(metadata | {"llama.embedding_length": 1 << 32, "llama.rope.dimension_count": 64}, names)


@pytest.mark.slow
def test_gguf_metadata_of_the_default_model(default_model: Path) -> None:
    parsed = parse_gguf(default_model.read_bytes(), default_model.name)
    config = from_gguf_metadata(parsed.metadata, [t.name for t in parsed.tensors])
    assert (config.architecture, config.num_layers, config.hidden_size, config.num_heads, config.num_kv_heads) == (
        "llama", 30, 576, 9, 3)
    assert (config.vocab_size, config.head_dim, config.intermediate_size, config.tie_word_embeddings) == (
        49152, 64, 1536, True)
    assert config.rope_theta == 100_000.0 and config.max_position_embeddings == 8192


def test_qwen2_per_layer_sliding_window_is_refused() -> None:
    config = hf_dict(transformers.Qwen2Config(**SMALL, use_sliding_window=True, sliding_window=16), "Qwen2ForCausalLM")
    with pytest.raises(ModelConfigError, match="per-layer sliding window"):
        from_hf_config(config)
