"""GGUF tensor bytes to torch tensors: the float types and the block quantisations llama.cpp ships most.

Every decoder works on whole tensors at once (one row per block), so a 135M-parameter model decodes in
well under a second without a Python loop over blocks. Bytes are copied once into memory the tensor owns:
the caller's buffer is the verified one, it may be read-only or unmapped later, and nothing decoded here
may alias it. Results match ``gguf.quants.dequantize`` bit for bit, because the same float32 operations
are applied in the same order.

Block layouts (little-endian; ``f16`` scales; elements of a block in output order):

    Q8_0  34 B / 32:  d, int8 q[32]                                   x = d * q
    Q4_0  18 B / 32:  d, q[16] low nibbles then high nibbles           x = d * (q - 8)
    Q4_1  20 B / 32:  d, m, q[16] as Q4_0                              x = d * q + m
    Q4_K 144 B / 256: d, dmin, 6-bit scales/mins[12], q[128]           x = d * sc * q - dmin * mn
    Q5_K 176 B / 256: as Q4_K plus qh[32] (bit j: sub-block j's 5th bit) before q[128]
    Q6_K 210 B / 256: ql[128], qh[64], int8 scales[16], d              x = d * sc * (q - 32)
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Sequence

import numpy as np
import torch

from engine.errors import WeightError
from sbom.gguf import GGML_TYPES

__all__ = ["SUPPORTED_TYPES", "Buffer", "dequantize", "owned_bytes"]

Buffer = bytes | bytearray | memoryview | mmap.mmap
"""What a verified model file arrives as: read into memory, or mapped."""

_TYPE_BY_NAME = {t.name: t for t in GGML_TYPES.values()}


def owned_bytes(data: Buffer) -> torch.Tensor:
    """One copy of ``data`` as a uint8 tensor: writable, 64-byte aligned, and independent of the source."""
    view = memoryview(data).cast("B")
    out = torch.empty(len(view), dtype=torch.uint8)
    out.numpy()[:] = np.frombuffer(view, dtype=np.uint8)
    return out


def dequantize(
    data: Buffer, type_name: str, shape: Sequence[int], *, name: str, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Decode one tensor's bytes; ``shape`` is torch (row-major) order, so blocks run along its last dim."""
    decode = _DECODERS.get(type_name)
    gtype = _TYPE_BY_NAME.get(type_name)
    if decode is None or gtype is None:
        raise WeightError(f"tensor {name!r} has ggml type {type_name}, which the engine cannot load")
    n_elements = 1
    for dim in shape:
        n_elements *= dim
    row = shape[-1] if shape else 1
    if row % gtype.block_size:
        raise WeightError(f"tensor {name!r}: rows of {row} elements are not whole {type_name} blocks")
    expected = n_elements // gtype.block_size * gtype.type_size
    view = memoryview(data).cast("B")
    if len(view) != expected:
        raise WeightError(f"tensor {name!r}: {type_name}{tuple(shape)} needs {expected} bytes, got {len(view)}")
    raw = owned_bytes(view)
    blocks = raw.view(-1, gtype.type_size) if gtype.block_size > 1 else raw
    return decode(blocks).reshape(tuple(shape)).to(dtype)


def _f16(blocks: torch.Tensor, at: int) -> torch.Tensor:
    """The f16 scale at byte ``at`` of every block, as a float32 column (n_blocks, 1).

    Every block size and scale offset is even, so the blocks can be read as f16 words in place.
    """
    return blocks.view(torch.float16)[:, at // 2 : at // 2 + 1].float()


def _unpack(x: torch.Tensor, shifts: Sequence[int], mask: int) -> torch.Tensor:
    """Bit fields of each byte: (..., k) -> (..., len(shifts), k), field i being ``(x >> shifts[i]) & mask``.

    One op per shift (at most 8): broadcasting a tensor of shifts is several times slower on uint8.
    """
    return torch.stack([(x >> s) & mask for s in shifts], dim=-2)


def _q8_0(b: torch.Tensor) -> torch.Tensor:
    return b[:, 2:].view(torch.int8).float() * _f16(b, 0)


def _q4_0(b: torch.Tensor) -> torch.Tensor:
    q = _unpack(b[:, 2:], (0, 4), 0xF).reshape(-1, 32).float()
    return _f16(b, 0) * (q - 8)


def _q4_1(b: torch.Tensor) -> torch.Tensor:
    q = _unpack(b[:, 4:], (0, 4), 0xF).reshape(-1, 32).float()
    return _f16(b, 0) * q + _f16(b, 2)


def _k_scales(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The eight 6-bit (scale, min) pairs of a Q4_K/Q5_K block, from bytes 4..16, each (n_blocks, 8, 1).

    Sub-blocks 0-3 keep their low 6 bits in bytes 0-3 (scales) and 4-7 (mins); sub-blocks 4-7 have
    their low 4 bits in bytes 8-11 and borrow the spare top 2 bits of bytes 0-7.
    """
    s = b[:, 4:16]
    lo, hi, mix = s[:, 0:4], s[:, 4:8], s[:, 8:12]
    sc = torch.cat((lo & 0x3F, (mix & 0xF) | ((lo >> 6) << 4)), dim=1)
    mn = torch.cat((hi & 0x3F, (mix >> 4) | ((hi >> 6) << 4)), dim=1)
    return sc.float().unsqueeze(-1), mn.float().unsqueeze(-1)


def _k_affine(b: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Q4_K/Q5_K: q is (n_blocks, 8, 32); x = (d * sc) * q - dmin * mn, per 32-element sub-block."""
    sc, mn = _k_scales(b)
    d, dmin = _f16(b, 0).unsqueeze(-1), _f16(b, 2).unsqueeze(-1)
    return ((d * sc) * q.float() - dmin * mn).reshape(-1, 256)


def _q4_k(b: torch.Tensor) -> torch.Tensor:
    # q[128] is four 32-byte chunks; chunk i holds sub-block 2i in low nibbles, 2i+1 in high ones.
    q = _unpack(b[:, 16:].reshape(-1, 4, 32), (0, 4), 0xF).reshape(-1, 8, 32)
    return _k_affine(b, q)


def _q5_k(b: torch.Tensor) -> torch.Tensor:
    low = _unpack(b[:, 48:].reshape(-1, 4, 32), (0, 4), 0xF).reshape(-1, 8, 32)
    high = _unpack(b[:, 16:48], range(8), 1)  # (n, 8, 32): bit j of qh[l] belongs to sub-block j
    return _k_affine(b, low | (high << 4))


def _q6_k(b: torch.Tensor) -> torch.Tensor:
    # Each 128-element half takes 64 ql bytes (low nibbles, then high) and 32 qh bytes (2 bits x 4).
    low = _unpack(b[:, :128].reshape(-1, 2, 64), (0, 4), 0xF).reshape(-1, 8, 32)
    high = _unpack(b[:, 128:192].reshape(-1, 2, 32), (0, 2, 4, 6), 0x3).reshape(-1, 8, 32)
    q = (low | (high << 4)).view(torch.int8).float() - 32
    scale = _f16(b, 208).unsqueeze(-1) * b[:, 192:208].view(torch.int8).float().unsqueeze(-1)  # (n, 16, 1)
    return (scale * q.reshape(-1, 16, 16)).reshape(-1, 256)


_DECODERS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "F32": lambda raw: raw.view(torch.float32),
    "F16": lambda raw: raw.view(torch.float16),
    "BF16": lambda raw: raw.view(torch.bfloat16),
    "Q8_0": _q8_0,
    "Q4_0": _q4_0,
    "Q4_1": _q4_1,
    "Q4_K": _q4_k,
    "Q5_K": _q5_k,
    "Q6_K": _q6_k,
}

SUPPORTED_TYPES = tuple(_DECODERS)
"""The ggml type names :func:`dequantize` decodes; any other type is refused with WeightError."""
