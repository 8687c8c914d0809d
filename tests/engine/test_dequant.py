"""engine.dequant against the reference numpy decoders of the gguf package, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType
from gguf.quants import dequantize as reference
from gguf.quants import quantize
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.dequant import SUPPORTED_TYPES, dequantize, owned_bytes
from engine.errors import WeightError

QUANTIZABLE = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1"]
K_QUANTS = {"Q4_K": (144, 0), "Q5_K": (176, 0), "Q6_K": (210, 208)}  # block bytes, offset of the f16 scales


def _reference(packed: np.ndarray, type_name: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(reference(packed, GGMLQuantizationType[type_name]))).float()


@pytest.mark.parametrize("type_name", QUANTIZABLE)
def test_matches_reference_after_quantize(type_name: str) -> None:
    data = np.random.default_rng(1).standard_normal((5, 256)).astype(np.float32) * 3
    data[0, :32] = 0  # an all-zero block has scale 0
    packed = quantize(data, GGMLQuantizationType[type_name])
    out = dequantize(packed.tobytes(), type_name, (5, 256), name="w")
    assert out.dtype == torch.float32 and out.shape == (5, 256)
    assert torch.equal(out, _reference(packed, type_name))


def _random_k_blocks(type_name: str, rows: int, blocks_per_row: int, seed: int) -> np.ndarray:
    """Random K-quant bytes (the gguf package has no K-quant quantizer) with finite, modest f16 scales."""
    size, at = K_QUANTS[type_name]
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, (rows * blocks_per_row, size), dtype=np.uint8)
    n_scales = 1 if type_name == "Q6_K" else 2  # Q6_K has d; Q4_K/Q5_K have d and dmin
    scales = rng.uniform(-0.05, 0.05, (len(raw), n_scales)).astype(np.float16)
    raw[:, at : at + 2 * n_scales] = scales.view(np.uint8)
    return raw.reshape(rows, blocks_per_row * size)


@pytest.mark.parametrize("type_name", sorted(K_QUANTS))
def test_k_quants_match_reference(type_name: str) -> None:
    packed = _random_k_blocks(type_name, rows=4, blocks_per_row=3, seed=2)
    out = dequantize(memoryview(packed.tobytes()), type_name, (4, 768), name="w")
    assert torch.equal(out, _reference(packed, type_name))


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 4), blocks=st.integers(1, 3), seed=st.integers(0, 2**32 - 1),
       type_name=st.sampled_from(sorted(K_QUANTS)))
def test_k_quants_any_shape(rows: int, blocks: int, seed: int, type_name: str) -> None:
    packed = _random_k_blocks(type_name, rows, blocks, seed)
    out = dequantize(packed.tobytes(), type_name, (rows, blocks * 256), name="w")
    assert torch.equal(out, _reference(packed, type_name))


def test_three_dimensional_shape_and_requested_dtype() -> None:
    data = np.random.default_rng(3).standard_normal((2, 3, 64)).astype(np.float32)
    packed = quantize(data, GGMLQuantizationType.Q8_0)
    out = dequantize(packed.tobytes(), "Q8_0", (2, 3, 64), name="w", dtype=torch.bfloat16)
    assert out.dtype == torch.bfloat16 and out.shape == (2, 3, 64)
    assert torch.equal(out, _reference(packed, "Q8_0").reshape(2, 3, 64).bfloat16())


def test_result_owns_its_memory() -> None:
    source = bytearray(np.arange(8, dtype=np.float32).tobytes())
    out = dequantize(source, "F32", (8,), name="w")
    source[:4] = b"\xff\xff\xff\xff"
    assert out[0] == 0.0
    assert owned_bytes(b"").numel() == 0


@pytest.mark.parametrize("type_name", SUPPORTED_TYPES)
def test_wrong_byte_length_is_refused(type_name: str) -> None:
    with pytest.raises(WeightError, match="'blk.0.attn_q.weight'.*needs"):
        dequantize(bytes(4096), type_name, (2, 256), name="blk.0.attn_q.weight")


def test_row_not_whole_blocks_is_refused() -> None:
    with pytest.raises(WeightError, match="not whole Q4_K blocks"):
        dequantize(bytes(144), "Q4_K", (1, 128), name="w")


@pytest.mark.parametrize("type_name", ["Q2_K", "Q5_0", "IQ2_XXS", "I32", "NOPE"])
def test_unsupported_type_names_tensor_and_type(type_name: str) -> None:
    with pytest.raises(WeightError, match=f"'output.weight' has ggml type {type_name}"):
        dequantize(bytes(84), type_name, (256,), name="output.weight")
