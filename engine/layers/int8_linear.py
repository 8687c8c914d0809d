"""Weight-only int8 linear layers for decoding on CPUs.

Decoding one token reads every weight once, so on a CPU it is bound by memory bandwidth, not arithmetic.
torch's int8 weight-packed matmul reads a quarter of the bytes of fp32, and with bf16 activations it runs
about twice as fast as fp32 for a few rows on an AVX2 machine, but slower for the many rows of a prompt
chunk. The layer therefore keeps both: int8 for up to ``max_int8_rows`` rows, the fp32 weight otherwise.
Results differ from fp32 by the int8 rounding (per output channel) and bf16 activations; greedy tokens can
differ from an fp32 reference where two tokens are close, so exact comparisons use the fp32 model.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Int8DecodeLinear", "use_int8_decode"]


class Int8DecodeLinear(nn.Module):
    """A linear layer that decodes few rows with int8 weights and prefills with the original fp32 ones."""

    def __init__(self, linear: nn.Linear, max_int8_rows: int = 4) -> None:
        super().__init__()
        weight = linear.weight.detach().float()  # [out, in]
        scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127.0  # [out]
        self.linear = linear
        self.register_buffer("qweight", torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale.to(torch.bfloat16))
        self.max_int8_rows = max_int8_rows

    def forward(self, x: Tensor) -> Tensor:
        rows = x.reshape(-1, x.shape[-1])  # [N, in]
        if rows.shape[0] > self.max_int8_rows:
            return self.linear(x)
        y = torch.ops.aten._weight_int8pack_mm(rows.to(torch.bfloat16), self.qweight, self.scale)  # [N, out]
        y = y.to(x.dtype).reshape(*x.shape[:-1], -1)
        return y + self.linear.bias if self.linear.bias is not None else y


def use_int8_decode(model: nn.Module, max_int8_rows: int = 4) -> nn.Module:
    """Wrap every fp32 linear layer of ``model`` (CPU only); returns the same model for chaining."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.Linear) and child.weight.device.type == "cpu" and child.weight.dtype == torch.float32:
            setattr(model, name, Int8DecodeLinear(child, max_int8_rows))
        else:
            use_int8_decode(child, max_int8_rows)
    return model
