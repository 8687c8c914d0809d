"""Rotary position embeddings (RoPE), with Llama 3.1's frequency scaling.

Angles are computed from each token's own position on every call, so rows of one batch may sit at different
positions and no table bounds the context. Rotation uses the Hugging Face "rotate half" pairing (dimension i
with i + head_dim/2), the layout that HF checkpoints' q/k weights are in; llama.cpp's GGUF files interleave the
pairs instead, so their q/k weights must be permuted back before they reach this module.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from engine.config import RopeScaling

__all__ = ["Rotary", "apply_rotary", "inverse_frequencies"]


def inverse_frequencies(head_dim: int, theta: float, scaling: RopeScaling | None = None) -> Tensor:
    """One frequency per dimension pair, float32, on the CPU; ``[head_dim / 2]``."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device="cpu").float() / head_dim)
    if scaling is None:
        return inv_freq
    # Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, and the band between blended.
    old_len = scaling.original_max_position_embeddings
    wavelen = 2 * math.pi / inv_freq
    smooth = (old_len / wavelen - scaling.low_freq_factor) / (scaling.high_freq_factor - scaling.low_freq_factor)
    smooth = smooth.clamp(0, 1)  # 0: long wavelength, scaled; 1: short, kept
    return (1 - smooth) * inv_freq / scaling.factor + smooth * inv_freq


class Rotary(nn.Module):
    """Holds the frequencies; returns the cos and sin for a batch of positions."""

    def __init__(self, head_dim: int, theta: float, scaling: RopeScaling | None) -> None:
        super().__init__()
        self.register_buffer("inv_freq", inverse_frequencies(head_dim, theta, scaling), persistent=False)

    def forward(self, positions: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        angles = positions[..., None].float() * self.inv_freq  # [B, T, D/2]
        angles = torch.cat((angles, angles), dim=-1)  # [B, T, D]
        return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate ``x`` ``[B, heads, T, D]`` by angles ``[B, T, D]``."""
    cos, sin = cos[:, None], sin[:, None]  # [B, 1, T, D]
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-second, first), dim=-1) * sin
