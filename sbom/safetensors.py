"""A strict reader for the safetensors header: the tensors' names, types, shapes and exact byte ranges.

The inference engine loads tensors from the offsets returned here, so the header must describe the file
exactly: every tensor's byte count follows from its dtype and shape, the data regions tile the data
section with no overlap and no unused byte, and nothing follows the last tensor. Anything else is a
file that two readers could interpret differently, and is refused as malformed.

The JSON rules (no duplicate keys, no NaN or Infinity) are shared with the format firewall, which
applies them to every JSON file of a model.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import IO, Any, NoReturn

from sbom.errors import MalformedFileError
from sbom.strict_json import load_strict_json

__all__ = [
    "DTYPE_BITS",
    "MAX_HEADER_SIZE",
    "SafetensorsHeader",
    "TensorEntry",
    "parse_safetensors_header",
    "read_safetensors_header",
]

MAX_HEADER_SIZE = 100 << 20
"""The reference implementation's own cap on the JSON header."""

_MAX_RANK = 8
_MAX_ELEMENTS = 1 << 62

DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E4M3": 8,
    "F8_E5M2": 8,
    "F8_E8M0": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U16": 16,
    "I16": 16,
    "F16": 16,
    "BF16": 16,
    "U32": 32,
    "I32": 32,
    "F32": 32,
    "U64": 64,
    "I64": 64,
    "F64": 64,
    "C64": 64,
}
"""Bits per element; sub-byte types are valid only when a tensor fills whole bytes."""


@dataclass(frozen=True, slots=True)
class TensorEntry:
    """One tensor and the absolute byte range ``[start, end)`` that holds it in the file."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class SafetensorsHeader:
    """The validated header of a safetensors file."""

    tensors: tuple[TensorEntry, ...]
    """Sorted by ``start``; together they cover the data section exactly."""

    metadata: dict[str, str]
    header_size: int
    """N, the length of the JSON header; tensor data starts at ``8 + header_size``."""

    file_size: int

    @property
    def parameter_count(self) -> int:
        return sum(t.n_elements for t in self.tensors)


def read_safetensors_header(file: IO[bytes], file_size: int, name: str) -> SafetensorsHeader:
    """Read and validate the header from an open binary file, leaving the tensor data unread.

    ``file_size`` comes from ``fstat`` of the same open file, so that the checks describe the bytes the
    caller will go on to load.
    """
    file.seek(0)
    prefix = _read_exactly(file, 8, name)
    size = _header_size(prefix, file_size, name)
    return _parse_header(_read_exactly(file, size, name), file_size, name)


def parse_safetensors_header(data: bytes | bytearray | memoryview, name: str) -> SafetensorsHeader:
    """Validate the header of a whole safetensors file held in memory."""
    view = memoryview(data).cast("B")
    if len(view) < 8:
        _malformed(name, f"file of {len(view)} bytes is too short for the 8-byte header length")
    size = _header_size(view[:8], len(view), name)
    return _parse_header(view[8 : 8 + size], len(view), name)


def _header_size(prefix: bytes | memoryview, file_size: int, name: str) -> int:
    size: int = struct.unpack("<Q", prefix)[0]
    if size < 2:
        _malformed(name, f"header length {size} is too small for a JSON object")
    if size > MAX_HEADER_SIZE:
        _malformed(name, f"header length {size} exceeds the {MAX_HEADER_SIZE >> 20} MiB limit")
    if 8 + size > file_size:
        _malformed(name, f"header length {size} runs past the end of the {file_size}-byte file")
    return size


def _parse_header(raw: bytes | memoryview, file_size: int, name: str) -> SafetensorsHeader:
    header_size = len(raw)
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        _malformed(name, f"header is not valid UTF-8 (byte {exc.start})")
    if not text.startswith("{"):
        _malformed(name, "header does not start with '{'")
    # The reference writer pads the header with spaces to an 8-byte boundary; nothing else may trail.
    body = text.rstrip(" ")
    try:
        doc = load_strict_json(body, name)
    except json.JSONDecodeError as exc:
        _malformed(name, f"header is not valid JSON: {exc.msg} at offset {exc.pos}")
    if not isinstance(doc, dict) or not body.endswith("}"):
        _malformed(name, "header is not a single JSON object followed only by spaces")

    metadata = _metadata(doc.pop("__metadata__", {}), name)
    tensors = sorted((_tensor(key, value, 8 + header_size, name) for key, value in doc.items()), key=_region)
    _check_tiling(tensors, 8 + header_size, file_size, name)
    return SafetensorsHeader(tuple(tensors), metadata, header_size, file_size)


def _metadata(value: Any, name: str) -> dict[str, str]:
    if not isinstance(value, dict):
        _malformed(name, "__metadata__ is not a JSON object")
    for key, item in value.items():
        if not isinstance(item, str):
            _malformed(name, f"__metadata__[{key!r}] is not a string")
    return dict(value)


def _tensor(key: str, value: Any, base: int, name: str) -> TensorEntry:
    if not isinstance(value, dict):
        _malformed(name, f"tensor {key!r} is not a JSON object")
    if set(value) != {"dtype", "shape", "data_offsets"}:
        _malformed(name, f"tensor {key!r} must have exactly the keys dtype, shape and data_offsets")
    dtype, shape, offsets = value["dtype"], value["shape"], value["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        _malformed(name, f"tensor {key!r} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or len(shape) > _MAX_RANK or not all(_is_uint(d) for d in shape):
        _malformed(name, f"tensor {key!r}: shape must be a list of at most {_MAX_RANK} non-negative integers")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_uint(o) for o in offsets):
        _malformed(name, f"tensor {key!r}: data_offsets must be two non-negative integers")
    begin, end = offsets
    if begin > end:
        _malformed(name, f"tensor {key!r}: data_offsets begin {begin} is after end {end}")
    elements = 1
    for dim in shape:
        elements *= dim
        if elements > _MAX_ELEMENTS:
            _malformed(name, f"tensor {key!r}: shape {shape} has more than 2**62 elements")
    bits = elements * DTYPE_BITS[dtype]
    if bits % 8:
        _malformed(name, f"tensor {key!r}: {elements} {dtype} elements do not fill whole bytes")
    if end - begin != bits // 8:
        _malformed(name, f"tensor {key!r}: {dtype}{shape} needs {bits // 8} bytes but data_offsets span {end - begin}")
    return TensorEntry(key, dtype, tuple(shape), base + begin, base + end)


def _check_tiling(tensors: list[TensorEntry], data_start: int, file_size: int, name: str) -> None:
    """The regions, in order, must start at the data section and each begin where the last ended."""
    cursor, previous = data_start, None
    for t in tensors:
        if t.start < cursor:
            _malformed(name, f"tensor {t.name!r} overlaps tensor {previous!r}")
        if t.start > cursor:
            where = f"after tensor {previous!r}" if previous is not None else "at the start of the data"
            _malformed(name, f"{t.start - cursor} unused bytes {where}, before tensor {t.name!r}")
        cursor, previous = t.end, t.name
    if cursor != file_size:
        if cursor > file_size:
            _malformed(name, f"tensor {previous!r} ends {cursor - file_size} bytes past the end of the file")
        _malformed(name, f"{file_size - cursor} bytes after the last tensor are not described by the header")


def _region(t: TensorEntry) -> tuple[int, int]:
    return t.start, t.end


def _is_uint(value: Any) -> bool:
    return type(value) is int and value >= 0  # bool is an int subclass; true is not a dimension


def _read_exactly(file: IO[bytes], n: int, name: str) -> bytes:
    data = file.read(n)
    if len(data) != n:
        _malformed(name, f"file ended after {len(data)} of {n} header bytes")
    return data


def _malformed(name: str, why: str) -> NoReturn:
    raise MalformedFileError(name, why)
