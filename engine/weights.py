"""Verified model bytes to torch tensors under Hugging Face names.

The engine hashes a model's files and then loads the very buffers it hashed (bytes, or a read-only
mmap), so these functions take buffers, never paths, and parse them with the strict readers of
``sbom``: whatever a tensor table claims has been checked against the buffer before a byte is decoded.

Copy policy: each tensor's bytes are copied exactly once, into memory the tensor owns. The source may
be read-only (``torch.frombuffer`` on it would warn, and a write through the tensor would be undefined),
may be unmapped once loading is done, and need not place tensors at offsets aligned for their dtype.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch

from engine.dequant import Buffer, dequantize, owned_bytes
from engine.errors import ModelConfigError, WeightError
from engine.gguf_names import PERMUTED_ARCHITECTURES, check_architecture, hf_name
from policies.errors import ModelgateError
from sbom.errors import MalformedFileError
from sbom.gguf import GGUFFile, parse_gguf
from sbom.inventory import check_relative_name
from sbom.safetensors import parse_safetensors_header
from sbom.strict_json import load_strict_json

__all__ = ["load_gguf_tensors", "load_safetensors_tensors", "shard_files_from_index"]

_T = TypeVar("_T")

_SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def load_gguf_tensors(
    data: Buffer, name: str, *, dtype: torch.dtype = torch.float32
) -> tuple[GGUFFile, dict[str, torch.Tensor]]:
    """Parse a whole GGUF file held in memory and decode every tensor, keyed by its HF name.

    Q and K come back in HF's rotary layout (llama.cpp's per-head row permutation undone). When the
    file has no ``output.weight`` there is no ``lm_head.weight``: the model ties it to the embeddings.
    """
    return _borrowing(data, lambda view: _load_gguf(view, name, dtype))


def _load_gguf(view: memoryview, name: str, dtype: torch.dtype) -> tuple[GGUFFile, dict[str, torch.Tensor]]:
    gguf = parse_gguf(view, name)
    arch = check_architecture(gguf.metadata.get("general.architecture"))
    blocks = _positive_int(gguf.metadata, f"{arch}.block_count", None)
    n_head = _positive_int(gguf.metadata, f"{arch}.attention.head_count", None)
    n_kv_head = _positive_int(gguf.metadata, f"{arch}.attention.head_count_kv", n_head)
    tensors: dict[str, torch.Tensor] = {}
    for t in gguf.tensors:
        key = hf_name(t.name, blocks)
        if key is None:
            continue
        shape = tuple(reversed(t.shape))  # ggml lists ne0 (the fastest-varying dimension) first
        w = dequantize(view[t.offset : t.offset + t.nbytes], t.type_name, shape, name=t.name, dtype=dtype)
        if arch in PERMUTED_ARCHITECTURES and ".attn_q." in t.name:
            w = _unpermute(w, n_head, t.name)
        elif arch in PERMUTED_ARCHITECTURES and ".attn_k." in t.name:
            w = _unpermute(w, n_kv_head, t.name)
        tensors[key] = w
    return gguf, tensors


def load_safetensors_tensors(
    files: Mapping[str, Buffer], *, dtype: torch.dtype | None = None
) -> dict[str, torch.Tensor]:
    """Every tensor of every shard, by name; ``dtype`` casts the floating-point ones only.

    Integer and boolean tensors (position ids, masks) keep their type: casting them would change what
    they mean. A name found in two shards is refused: which copy wins would be the loader's choice.
    """
    tensors: dict[str, torch.Tensor] = {}
    for file_name, data in files.items():
        _borrowing(data, lambda view, file_name=file_name: _load_safetensors(view, file_name, dtype, tensors))
    return tensors


def _load_safetensors(view: memoryview, name: str, dtype: torch.dtype | None, into: dict[str, torch.Tensor]) -> None:
    for t in parse_safetensors_header(view, name).tensors:
        if t.name in into:
            raise WeightError(f"tensor {t.name!r} of {name} is also in another shard")
        w = _safetensor(view[t.start : t.end], t.dtype, t.shape, f"{name}: {t.name}")
        into[t.name] = w.to(dtype) if dtype is not None and w.is_floating_point() else w


def shard_files_from_index(index_json: Buffer, name: str) -> list[str]:
    """The shard files that ``model.safetensors.index.json`` maps tensors to, sorted and checked as names."""
    try:
        doc = load_strict_json(bytes(index_json).decode("utf-8"), name)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedFileError(name, f"not UTF-8 JSON: {exc}") from None
    weight_map = doc.get("weight_map") if isinstance(doc, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise ModelConfigError(f"{name}: weight_map must be a non-empty object of tensor name to file")
    shards = set()
    for tensor, file in weight_map.items():
        if not isinstance(file, str) or not file.endswith(".safetensors"):
            raise ModelConfigError(f"{name}: tensor {tensor!r} maps to {file!r}, not a .safetensors file")
        shards.add(check_relative_name(file))
    return sorted(shards)


def _borrowing(data: Buffer, load: Callable[[memoryview], _T]) -> _T:
    """Run ``load`` on a byte view of the caller's buffer, released however loading ends.

    Our typed errors leave without their traceback: its frames hold slices of the buffer, and while
    they live the caller cannot close its mmap (``BufferError``, which would hide the real reason).
    """
    view = memoryview(data).cast("B")
    try:
        return load(view)
    except ModelgateError as exc:
        raise exc.with_traceback(None)  # noqa: B904 -- the same error re-raised, not a new one
    finally:
        view.release()


def _safetensor(raw: memoryview, dtype: str, shape: tuple[int, ...], where: str) -> torch.Tensor:
    torch_dtype = _SAFETENSORS_DTYPES.get(dtype)
    if torch_dtype is None:
        raise WeightError(f"tensor {where} has dtype {dtype}, which the engine cannot load")
    data = owned_bytes(raw)
    if torch_dtype is torch.bool and data.numel() and int(data.max()) > 1:
        raise WeightError(f"tensor {where}: BOOL byte other than 0 or 1")  # any other byte is undefined in torch
    return data.view(torch_dtype).reshape(shape)


def _unpermute(w: torch.Tensor, heads: int, name: str) -> torch.Tensor:
    """Undo llama.cpp's Q/K permutation: GGML pairs rotary dims (0,1),(2,3)..., HF splits halves."""
    rows = w.shape[0]
    if rows % (2 * heads):
        raise WeightError(f"tensor {name!r}: {rows} rows do not split into {heads} heads of pairs")
    # GGUF (heads, head_dim/2, 2, ...) -> HF (heads, 2, head_dim/2, ...)
    return w.reshape(heads, rows // heads // 2, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def _positive_int(metadata: dict[str, Any], key: str, default: int | None) -> int:
    value = metadata.get(key, default)
    if type(value) is not int or value < 1:
        raise ModelConfigError(f"GGUF metadata {key} must be a positive integer, not {value!r}")
    return value
