"""Our decoder against transformers' on the same random weights, and the slot cache against a full forward."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
import torch
import transformers

from engine.config import ModelConfig, from_hf_config
from engine.errors import WeightError
from engine.models.llama import KVCache, Transformer, build_model, checkpoint_shapes

TOLERANCE = 1e-4
"""Max abs logit difference in float32 (measured: below 1e-5 against transformers' eager attention)."""

SMALL = {"vocab_size": 96, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128,
         "initializer_range": 0.2}
LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 32}

VARIANTS: dict[str, Callable[[], Any]] = {
    "llama": lambda: transformers.LlamaConfig(**SMALL),
    "llama3-tied": lambda: transformers.LlamaConfig(**SMALL, rope_scaling=LLAMA3_ROPE, rope_theta=500_000.0,
                                                    tie_word_embeddings=True),
    "mistral": lambda: transformers.MistralConfig(**SMALL, sliding_window=4096),
    "mistral-window8": lambda: transformers.MistralConfig(**SMALL, sliding_window=8),  # sequences outgrow it
    "qwen2-bias": lambda: transformers.Qwen2Config(**SMALL, tie_word_embeddings=True),
}


def reference(name: str) -> tuple[torch.nn.Module, ModelConfig]:
    """A tiny transformers model with every parameter random (norms and biases start at 1 and 0 otherwise)."""
    hf_config = VARIANTS[name]()
    hf_config.architectures = [{"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
                                "qwen2": "Qwen2ForCausalLM"}[hf_config.model_type]]
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(hf_config, attn_implementation="eager",
                                                          dtype=torch.float32).eval()
    with torch.no_grad():
        for pname, param in model.named_parameters():
            if pname.endswith("bias") or "norm" in pname:
                param.add_(0.2 * torch.randn_like(param))
    return model, from_hf_config(hf_config.to_dict())


def ours(name: str) -> tuple[Transformer, torch.nn.Module, ModelConfig]:
    hf, config = reference(name)
    return build_model(config, hf.state_dict(), device="cpu", dtype=torch.float32), hf, config


def cache_for(config: ModelConfig, slots: int = 4) -> KVCache:
    return KVCache.for_model(config, max_slots=slots, max_seq_len=64, dtype=torch.float32, device="cpu")


def run(model: Transformer, cache: KVCache, tokens: list[int], start: int, slot: int) -> torch.Tensor:
    """One row of ``tokens`` at positions ``start...`` in ``slot``; logits ``[T, vocab]``."""
    positions = torch.arange(start, start + len(tokens))[None]
    return model(torch.tensor([tokens]), positions, cache, torch.tensor([slot]))[0]


@pytest.mark.parametrize("name", list(VARIANTS))
@torch.inference_mode()
def test_logits_match_transformers(name: str) -> None:
    model, hf, config = ours(name)
    tokens = torch.randint(0, config.vocab_size, (3, 40), generator=torch.Generator().manual_seed(1))
    expected = hf(tokens).logits
    got = model(tokens, torch.arange(40).expand(3, 40), cache_for(config), torch.tensor([2, 0, 1]))
    assert (got - expected).abs().max() <= TOLERANCE
    assert torch.equal(got.argmax(-1), expected.argmax(-1))


@torch.inference_mode()
def test_llama3_rope_scaling_changes_the_model() -> None:
    """Positions beyond the original context must be affected, or the llama3 comparison proves nothing."""
    hf, config = reference("llama3-tied")
    unscaled = dataclasses.replace(config, rope_scaling=None)
    state = hf.state_dict()
    tokens, positions = torch.arange(40)[None], torch.arange(40)[None]
    scaled = build_model(config, state, device="cpu", dtype=torch.float32)(tokens, positions, cache_for(config),
                                                                           torch.tensor([0]))
    plain = build_model(unscaled, state, device="cpu", dtype=torch.float32)(tokens, positions, cache_for(config),
                                                                            torch.tensor([0]))
    assert (scaled - plain).abs().max() > 1e-2


@pytest.mark.parametrize("name", ["llama", "qwen2-bias"])
@torch.inference_mode()
def test_chunked_prefill_then_decode_matches_one_forward(name: str) -> None:
    model, _, config = ours(name)
    tokens = torch.randint(0, config.vocab_size, (24,), generator=torch.Generator().manual_seed(2)).tolist()
    whole = run(model, cache_for(config), tokens, 0, slot=1)
    cache = cache_for(config)
    run(model, cache, [5] * 30, 0, slot=3)  # a neighbour's entries must not leak in
    pieces = [run(model, cache, tokens[:7], 0, slot=1), run(model, cache, tokens[7:16], 7, slot=1)]
    pieces += [run(model, cache, [token], i, slot=1) for i, token in enumerate(tokens[16:], start=16)]
    assert (torch.cat(pieces) - whole).abs().max() <= TOLERANCE


@torch.inference_mode()
def test_batch_of_rows_at_different_positions_matches_each_alone() -> None:
    """A decode batch mixing three sequences, one in a slot that held a longer sequence before."""
    model, _, config = ours("llama3-tied")
    rng = torch.Generator().manual_seed(3)
    prompts = [torch.randint(0, config.vocab_size, (n,), generator=rng).tolist() for n in (5, 17, 2)]
    slots, following = [2, 0, 1], [7, 8, 9]
    cache = cache_for(config)
    run(model, cache, list(range(40)), 0, slot=2)  # stale entries at positions 0..39 of slot 2
    for prompt, slot in zip(prompts, slots, strict=True):
        run(model, cache, prompt, 0, slot)
    batch = model(torch.tensor(following)[:, None], torch.tensor([[len(p)] for p in prompts]), cache,
                  torch.tensor(slots))[:, 0]  # [3, vocab]
    alone = torch.stack([run(model, cache_for(config), p + [t], 0, slot=0)[-1]
                         for p, t in zip(prompts, following, strict=True)])
    assert (batch - alone).abs().max() <= TOLERANCE
    assert torch.equal(batch.argmax(-1), alone.argmax(-1))


def test_load_weights_names_missing_unexpected_and_misshapen_tensors() -> None:
    config = from_hf_config({"architectures": ["LlamaForCausalLM"], **SMALL})
    state = {name: torch.zeros(shape) for name, shape in checkpoint_shapes(config).items()}
    del state["model.layers.1.mlp.up_proj.weight"]
    state["model.layers.0.self_attn.q_proj.bias"] = torch.zeros(64)
    state["model.norm.weight"] = torch.zeros(65)
    with pytest.raises(WeightError) as err:
        build_model(config, state, device="cpu", dtype=torch.float32)
    for part in ("missing model.layers.1.mlp.up_proj.weight", "unexpected model.layers.0.self_attn.q_proj.bias",
                 "model.norm.weight has shape (65,), expected (64,)"):
        assert part in err.value.reason


def test_load_weights_refuses_integer_tensors_and_a_different_tied_head() -> None:
    config = from_hf_config({"architectures": ["LlamaForCausalLM"], **SMALL, "tie_word_embeddings": True})
    state = {name: torch.zeros(shape) for name, shape in checkpoint_shapes(config).items()}
    state["model.norm.weight"] = torch.zeros(64, dtype=torch.int8)
    with pytest.raises(WeightError, match="model.norm.weight has dtype torch.int8"):
        build_model(config, state, device="cpu", dtype=torch.float32)
    state["model.norm.weight"] = torch.zeros(64)
    state["lm_head.weight"] = torch.ones(96, 64)
    with pytest.raises(WeightError, match="differs from the tied"):
        build_model(config, state, device="cpu", dtype=torch.float32)
