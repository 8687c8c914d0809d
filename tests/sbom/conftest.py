"""Builders for real weight files, shared by the firewall and parser tests.

Safetensors files come from a small writer that follows the format's reference layout (the
``safetensors`` package is not a dependency); GGUF files come from ``gguf.GGUFWriter``, the reference
writer, so that the parser is tested against bytes it did not produce itself.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from hypothesis import strategies as st

from sbom.errors import SbomError

SafetensorsWriter = Callable[..., bytes]
Mutations = Callable[[bytes], st.SearchStrategy[bytes]]


def _write_safetensors(
    tensors: dict[str, tuple[str, list[int], bytes]], metadata: dict[str, str] | None = None
) -> bytes:
    """Lay tensors out back to back in the given order, after a header padded with spaces to 8 bytes."""
    header: dict[str, object] = {"__metadata__": metadata} if metadata is not None else {}
    data = bytearray()
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + bytes(data)


@pytest.fixture(scope="session")
def make_safetensors() -> SafetensorsWriter:
    """``make_safetensors({name: (dtype, shape, raw bytes)}, metadata)`` returns a whole file."""
    return _write_safetensors


@pytest.fixture(scope="session")
def small_safetensors() -> bytes:
    return _write_safetensors(
        {
            "embed.weight": ("F32", [2, 3], np.arange(6, dtype="<f4").tobytes()),
            "norm.weight": ("BF16", [4], bytes(8)),
            "step": ("I64", [], struct.pack("<q", 7)),
            "empty": ("U8", [0], b""),
        },
        {"format": "pt"},
    )


@pytest.fixture(scope="session")
def small_gguf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A GGUF v3 file with one key of every value type and tensors of plain and block-quantised types."""
    path = tmp_path_factory.mktemp("gguf") / "small.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_uint8("test.u8", 200)
    writer.add_int8("test.i8", -5)
    writer.add_uint16("test.u16", 60000)
    writer.add_int16("test.i16", -300)
    writer.add_uint32("llama.context_length", 2048)
    writer.add_int32("test.i32", -70000)
    writer.add_float32("test.f32", 0.5)
    writer.add_uint64("test.u64", 2**40)
    writer.add_int64("test.i64", -(2**40))
    writer.add_float64("test.f64", 1.25)
    writer.add_bool("test.bool", True)
    writer.add_string("general.name", "tiny ünïcode model")
    writer.add_array("tokenizer.ggml.tokens", ["<s>", "</s>", "héllo", ""])
    writer.add_array("tokenizer.ggml.scores", [0.0, -1.5, 2.25, 3.0])
    writer.add_array("tokenizer.ggml.token_type", [3, 3, 1, 1])
    writer.add_array("test.nested", [[1, 2], [3, 4, 5]])
    writer.add_tensor("token_embd.weight", np.arange(12, dtype=np.float32).reshape(3, 4))
    writer.add_tensor("output_norm.weight", np.ones(8, dtype=np.float16))
    writer.add_tensor("blk.0.ids", np.arange(5, dtype=np.int32))
    q8 = np.frombuffer(bytes(range(68)), dtype=np.uint8).reshape(2, 34)
    writer.add_tensor("blk.0.attn_q.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(path).read_bytes()


def _mutations(valid: bytes) -> st.SearchStrategy[bytes]:
    """Bit flips, truncations, insertions and huge length fields applied to a valid file."""
    size = len(valid)
    offsets = st.integers(0, size - 1)
    flip = st.tuples(offsets, st.integers(0, 7)).map(lambda p: _patch(valid, p[0], bytes([valid[p[0]] ^ (1 << p[1])])))
    truncate = st.integers(0, size - 1).map(lambda n: valid[:n])
    insert = st.tuples(offsets, st.binary(min_size=1, max_size=16)).map(lambda p: valid[: p[0]] + p[1] + valid[p[0] :])
    huge = st.sampled_from([2**31, 2**32 - 1, 2**40, 2**60, 2**63, 2**64 - 1])
    length = st.tuples(st.integers(0, size - 8), huge).map(lambda p: _patch(valid, p[0], struct.pack("<Q", p[1])))
    word = st.tuples(st.integers(0, size - 4), st.integers(0, 2**32 - 1)).map(
        lambda p: _patch(valid, p[0], struct.pack("<I", p[1]))
    )
    return st.one_of(flip, truncate, insert, length, word)


def _patch(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


@pytest.fixture(scope="session")
def mutations() -> Mutations:
    """``data.draw(mutations(valid))`` inside a ``@given(st.data())`` test."""
    return _mutations


def _parse_or_none(parse: Callable[[bytes, str], Any], data: bytes) -> Any:
    """The parser's result, or None when it refused ``data`` with an SbomError; any other error escapes."""
    try:
        return parse(data, "fuzz")
    except SbomError:
        return None


@pytest.fixture(scope="session")
def parse_or_none() -> Callable[[Callable[[bytes, str], Any], bytes], Any]:
    """For property tests: the only outcomes a parser may have are a result or an SbomError."""
    return _parse_or_none
