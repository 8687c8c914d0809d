"""The Llama-family decoder (Llama 2/3/3.1, Mistral, Qwen2, SmolLM2), read top down.

The KV cache is static and split into slots, one per running sequence, so a continuous-batching runtime can
put sequences of different lengths in one batch: each row names its slot and the position of each of its
tokens, writes its keys and values there, and attends only to its own slot up to its own position. Stale
entries left in a slot by an earlier, longer sequence are never read, so slots need no clearing.

Checkpoint names are Hugging Face's; at load, q/k/v are fused into one projection and gate/up into another,
so each block runs two matmuls fewer.

    >>> import torch
    >>> from engine.config import from_hf_config
    >>> cfg = from_hf_config({"architectures": ["LlamaForCausalLM"], "vocab_size": 32, "hidden_size": 16,
    ...     "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
    ...     "max_position_embeddings": 64})
    >>> state = {name: torch.randn(shape) for name, shape in checkpoint_shapes(cfg).items()}
    >>> model = build_model(cfg, state, device="cpu", dtype=torch.float32)
    >>> cache = KVCache.for_model(cfg, max_slots=2, max_seq_len=64, dtype=torch.float32, device="cpu")
    >>> model(torch.tensor([[1, 2, 3]]), torch.tensor([[0, 1, 2]]), cache, torch.tensor([1])).shape
    torch.Size([1, 3, 32])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.config import ModelConfig
from engine.errors import WeightError
from engine.layers.rmsnorm import RMSNorm
from engine.layers.rotary import Rotary, apply_rotary

__all__ = ["KVCache", "Transformer", "build_model", "checkpoint_shapes"]


class KVCache:
    """Keys and values of every layer and slot, ``[layers, slots, kv_heads, max_seq_len, head_dim]`` each."""

    def __init__(self, num_layers: int, max_slots: int, num_kv_heads: int, max_seq_len: int, head_dim: int,
                 dtype: torch.dtype, device: torch.device | str) -> None:
        shape = (num_layers, max_slots, num_kv_heads, max_seq_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)

    @classmethod
    def for_model(cls, config: ModelConfig, *, max_slots: int, max_seq_len: int, dtype: torch.dtype,
                  device: torch.device | str) -> KVCache:
        return cls(config.num_layers, max_slots, config.num_kv_heads, max_seq_len, config.head_dim, dtype, device)


class _Step(NamedTuple):
    """What every layer needs to know about the batch besides its activations."""

    cos: Tensor  # [B, T, head_dim]
    sin: Tensor  # [B, T, head_dim]
    mask: Tensor  # [B, 1, T, L] bool: may query t see cache position l
    positions: Tensor  # [B, T]
    slots: Tensor  # [B]


class Transformer(nn.Module):
    """Usually built on ``meta`` by ``build_model``: its parameters exist only once ``load_weights`` assigns them."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.output = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.rotary = Rotary(config.head_dim, config.rope_theta, config.rope_scaling)

    def forward(self, tokens: Tensor, positions: Tensor, cache: KVCache, slots: Tensor,
                length: int | None = None) -> Tensor:
        """Logits ``[B, T, vocab]`` for tokens ``[B, T]`` at positions ``[B, T]`` of sequences in ``slots [B]``.

        Positions must be below the cache's ``max_seq_len``, and a row's earlier positions already cached.
        ``length``: how many cache positions to attend over, ``positions.max() + 1`` unless the caller knows it
        (reading it from the tensor stops the device and breaks a compiled graph).
        """
        return self.logits(self.hidden_states(tokens, positions, cache, slots, length))

    def hidden_states(self, tokens: Tensor, positions: Tensor, cache: KVCache, slots: Tensor,
                      length: int | None = None) -> Tensor:
        """The final hidden states ``[B, T, hidden]``; the runner turns only the positions it samples into logits."""
        x = self.tok_embeddings(tokens)  # [B, T, hidden]
        cos, sin = self.rotary(positions, x.dtype)
        length = int(positions.max()) + 1 if length is None else length
        seen = torch.arange(length, device=tokens.device)  # [L]: read no further than needed
        visible = seen <= positions[..., None]  # [B, T, L]: causal
        if self.config.sliding_window is not None:  # Mistral: a query sees only the last `window` positions
            visible &= seen > positions[..., None] - self.config.sliding_window
        step = _Step(cos, sin, visible[:, None], positions, slots)
        for i, layer in enumerate(self.layers):
            x = layer(x, step, cache.k[i], cache.v[i])
        return x

    def logits(self, hidden: Tensor) -> Tensor:
        return self.output(self.norm(hidden))  # [..., vocab]

    def load_weights(self, state: Mapping[str, Tensor]) -> None:
        """Assign a Hugging Face state dict (the model may be on ``meta``); mismatches raise WeightError."""
        shapes = checkpoint_shapes(self.config)
        state = dict(state)
        embeddings = state.get("model.embed_tokens.weight")
        if self.config.tie_word_embeddings and "lm_head.weight" in state:
            # transformers' state_dict() lists the tied head too; accept it only as the same numbers.
            if embeddings is None or not torch.equal(state.pop("lm_head.weight"), embeddings):
                raise WeightError("lm_head.weight differs from the tied model.embed_tokens.weight")
        problems = [f"missing {name}" for name in shapes if name not in state]
        problems += [f"unexpected {name}" for name in state if name not in shapes]
        problems += [f"{name} has shape {tuple(t.shape)}, expected {shapes[name]}" for name, t in state.items()
                     if name in shapes and tuple(t.shape) != shapes[name]]
        problems += [f"{name} has dtype {t.dtype}, expected floating point" for name, t in state.items()
                     if not t.is_floating_point()]
        if problems:
            raise WeightError("weights do not fit the model: " + "; ".join(problems))
        self.load_state_dict(_remap(state, self.config), assign=True)


class Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.attention = Attention(config)
        self.ffn_norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.feed_forward = FeedForward(config)

    def forward(self, x: Tensor, step: _Step, k_cache: Tensor, v_cache: Tensor) -> Tensor:
        h = x + self.attention(self.attention_norm(x), step, k_cache, v_cache)
        return h + self.feed_forward(self.ffn_norm(h))


class Attention(nn.Module):
    """Grouped-query attention over one layer's slots ``[slots, kv_heads, max_seq_len, head_dim]``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = config.num_heads, config.num_kv_heads, config.head_dim
        qkv = (config.num_heads + 2 * config.num_kv_heads) * config.head_dim
        self.wqkv = nn.Linear(config.hidden_size, qkv, bias=config.attention_bias)
        self.wo = nn.Linear(config.num_heads * config.head_dim, config.hidden_size, bias=False)

    def forward(self, x: Tensor, step: _Step, k_cache: Tensor, v_cache: Tensor) -> Tensor:
        b, t, _ = x.shape
        q_size, kv_size = self.heads * self.head_dim, self.kv_heads * self.head_dim
        q, k, v = self.wqkv(x).split([q_size, kv_size, kv_size], dim=-1)
        q = apply_rotary(q.view(b, t, self.heads, self.head_dim).transpose(1, 2), step.cos, step.sin)
        k = apply_rotary(k.view(b, t, self.kv_heads, self.head_dim).transpose(1, 2), step.cos, step.sin)
        v = v.view(b, t, self.kv_heads, self.head_dim)  # [B, T, KV, D]
        # Advanced indices around a slice put their broadcast dims first: the target is [B, T, KV, D].
        where = (step.slots[:, None], slice(None), step.positions)
        k_cache[where] = k.transpose(1, 2)
        v_cache[where] = v
        length = step.mask.shape[-1]
        # index_select on the narrowed cache: advanced indexing costs ~10x more per call on CPU.
        keys = k_cache[:, :, :length].index_select(0, step.slots)  # [B, KV, L, D]
        values = v_cache[:, :, :length].index_select(0, step.slots)
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=step.mask, enable_gqa=True)  # [B, H, T, D]
        return self.wo(out.transpose(1, 2).reshape(b, t, q_size))


class FeedForward(nn.Module):
    """SwiGLU: ``w2(silu(gate(x)) * up(x))`` with gate and up fused into ``w13``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.w13 = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        self.w2 = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        gate, up = self.w13(x).chunk(2, dim=-1)  # [B, T, intermediate] each
        return self.w2(F.silu(gate) * up)


def checkpoint_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor a Hugging Face checkpoint of this shape holds, by name."""
    hidden, inter, d = config.hidden_size, config.intermediate_size, config.head_dim
    q, kv = config.num_heads * d, config.num_kv_heads * d
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (config.vocab_size, hidden),
                                          "model.norm.weight": (hidden,)}
    if not config.tie_word_embeddings:
        shapes["lm_head.weight"] = (config.vocab_size, hidden)
    for i in range(config.num_layers):
        p = f"model.layers.{i}."
        shapes |= {p + "self_attn.q_proj.weight": (q, hidden), p + "self_attn.k_proj.weight": (kv, hidden),
                   p + "self_attn.v_proj.weight": (kv, hidden), p + "self_attn.o_proj.weight": (hidden, q),
                   p + "mlp.gate_proj.weight": (inter, hidden), p + "mlp.up_proj.weight": (inter, hidden),
                   p + "mlp.down_proj.weight": (hidden, inter),
                   p + "input_layernorm.weight": (hidden,), p + "post_attention_layernorm.weight": (hidden,)}
        if config.attention_bias:
            shapes |= {p + "self_attn.q_proj.bias": (q,), p + "self_attn.k_proj.bias": (kv,),
                       p + "self_attn.v_proj.bias": (kv,)}
    return shapes


def _remap(hf: dict[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    """Hugging Face names to ours, fusing q/k/v and gate/up."""
    ours = {"tok_embeddings.weight": hf["model.embed_tokens.weight"], "norm.weight": hf["model.norm.weight"],
            "output.weight": hf["model.embed_tokens.weight" if config.tie_word_embeddings else "lm_head.weight"]}
    for i in range(config.num_layers):
        p, o = f"model.layers.{i}.", f"layers.{i}."
        attn = p + "self_attn."
        ours |= {
            o + "attention.wqkv.weight": torch.cat([hf[f"{attn}{x}_proj.weight"] for x in "qkv"]),
            o + "attention.wo.weight": hf[attn + "o_proj.weight"],
            o + "feed_forward.w13.weight": torch.cat([hf[p + "mlp.gate_proj.weight"], hf[p + "mlp.up_proj.weight"]]),
            o + "feed_forward.w2.weight": hf[p + "mlp.down_proj.weight"],
            o + "attention_norm.weight": hf[p + "input_layernorm.weight"],
            o + "ffn_norm.weight": hf[p + "post_attention_layernorm.weight"],
        }
        if config.attention_bias:
            ours[o + "attention.wqkv.bias"] = torch.cat([hf[f"{attn}{x}_proj.bias"] for x in "qkv"])
    return ours


def build_model(config: ModelConfig, state: Mapping[str, Tensor], *, device: torch.device | str,
                dtype: torch.dtype) -> Transformer:
    """Build on ``meta`` (no memory), then assign the weights cast to ``dtype`` on ``device``; for inference.

    Only floating-point tensors are cast: anything else (say, quantized blocks) is left for load to refuse.
    The KV cache must be of the same dtype.
    """
    with torch.device("meta"):
        model = Transformer(config)
    model.load_weights({name: t.to(device=device, dtype=dtype) if t.is_floating_point() else t
                        for name, t in state.items()})
    return model.to(device).eval().requires_grad_(False)
