"""A strict, bounded reader for GGUF (versions 2 and 3): metadata, tensor table and data offsets.

GGUF puts every length and count in the file, so a hostile file can claim an array of 2**60 strings.
Each count is checked against the bytes that remain before anything is allocated, the whole header is
capped, and only the header region is read: tensor data is never touched. Tensor sizes follow from
the ggml type table, and every tensor must be aligned, lie inside the file and overlap no other, since
the inference engine loads tensors from the offsets returned here.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, NamedTuple, NoReturn

from sbom.errors import MalformedFileError

__all__ = ["GGML_TYPES", "MAX_HEADER_SIZE", "GGMLType", "GGUFFile", "GGUFTensor", "parse_gguf", "read_gguf"]

MAX_HEADER_SIZE = 64 << 20
"""Metadata plus tensor table; large tokenizers (256k tokens with merges) need a few MiB."""

_MAX_STRING = 16 << 20
_MAX_ARRAY_DEPTH = 8
_MAX_DIMS = 4  # GGML_MAX_DIMS
_MAX_TENSOR_NAME = 63  # GGML_MAX_NAME is 64 bytes with the terminating NUL
_MAX_ALIGNMENT = 1 << 20
_DEFAULT_ALIGNMENT = 32
_MAX_ELEMENTS = 1 << 62
_FIRST_CHUNK = 1 << 20


class GGMLType(NamedTuple):
    """A ggml tensor type: ``type_size`` bytes hold each block of ``block_size`` elements."""

    name: str
    block_size: int
    type_size: int


GGML_TYPES: dict[int, GGMLType] = {
    0: GGMLType("F32", 1, 4),
    1: GGMLType("F16", 1, 2),
    2: GGMLType("Q4_0", 32, 18),
    3: GGMLType("Q4_1", 32, 20),
    6: GGMLType("Q5_0", 32, 22),
    7: GGMLType("Q5_1", 32, 24),
    8: GGMLType("Q8_0", 32, 34),
    10: GGMLType("Q2_K", 256, 84),
    11: GGMLType("Q3_K", 256, 110),
    12: GGMLType("Q4_K", 256, 144),
    13: GGMLType("Q5_K", 256, 176),
    14: GGMLType("Q6_K", 256, 210),
    15: GGMLType("Q8_K", 256, 292),
    16: GGMLType("IQ2_XXS", 256, 66),
    17: GGMLType("IQ2_XS", 256, 74),
    18: GGMLType("IQ3_XXS", 256, 98),
    19: GGMLType("IQ1_S", 256, 50),
    20: GGMLType("IQ4_NL", 32, 18),
    21: GGMLType("IQ3_S", 256, 110),
    22: GGMLType("IQ2_S", 256, 82),
    23: GGMLType("IQ4_XS", 256, 136),
    24: GGMLType("I8", 1, 1),
    25: GGMLType("I16", 1, 2),
    26: GGMLType("I32", 1, 4),
    27: GGMLType("I64", 1, 8),
    28: GGMLType("F64", 1, 8),
    29: GGMLType("IQ1_M", 256, 56),
    30: GGMLType("BF16", 1, 2),
    34: GGMLType("TQ1_0", 256, 54),
    35: GGMLType("TQ2_0", 256, 66),
    39: GGMLType("MXFP4", 32, 17),
}
"""ggml types by their numeric id (ggml.h); a type missing here is refused rather than guessed.

Q8_1 (9) is left out on purpose: ggml's block is 36 bytes and the gguf Python package says 40, and it
is only an intermediate type for dot products, never stored weights.
"""

_STRING, _ARRAY, _BOOL, _UINT32 = 8, 9, 7, 4
_SCALARS: dict[int, struct.Struct] = {
    0: struct.Struct("<B"),
    1: struct.Struct("<b"),
    2: struct.Struct("<H"),
    3: struct.Struct("<h"),
    _UINT32: struct.Struct("<I"),
    5: struct.Struct("<i"),
    6: struct.Struct("<f"),
    _BOOL: struct.Struct("<B"),
    10: struct.Struct("<Q"),
    11: struct.Struct("<q"),
    12: struct.Struct("<d"),
}
_U32, _U64 = _SCALARS[_UINT32], _SCALARS[10]

# Smallest encodings, used to bound counts before reading: a key/value pair is a non-empty key
# (8 + 1), a type (4) and a value (1); a tensor info is a name (8 + 1), n_dims (4), a type (4) and
# an offset (8); a string is its length (8); a nested array its type and count (12).
_MIN_KV, _MIN_TENSOR_INFO, _MIN_STRING, _MIN_ARRAY = 14, 25, 8, 12


@dataclass(frozen=True, slots=True)
class GGUFTensor:
    """One tensor and where its bytes lie."""

    name: str
    shape: tuple[int, ...]
    """In GGUF order: ``shape[0]`` (ne0) is the fastest-varying dimension."""

    ggml_type: int
    type_name: str
    offset: int
    """Absolute offset of the tensor's first byte in the file."""

    nbytes: int
    n_elements: int


@dataclass(frozen=True)
class GGUFFile:
    """The validated header of a GGUF file."""

    version: int
    metadata: dict[str, Any]
    """Values as Python scalars and strings; arrays as tuples."""

    tensors: tuple[GGUFTensor, ...]
    """In the order of the file's tensor table."""

    alignment: int
    data_offset: int
    file_size: int

    @property
    def parameter_count(self) -> int:
        return sum(t.n_elements for t in self.tensors)


def read_gguf(file: IO[bytes], file_size: int, name: str) -> GGUFFile:
    """Read and validate the header of an open GGUF file; tensor data is not read.

    ``file_size`` comes from ``fstat`` of the same open file.
    """

    def read_at(offset: int, n: int) -> bytes:
        file.seek(offset)
        return file.read(n)

    return _parse(_Cursor(read_at, file_size, name))


def parse_gguf(data: bytes | bytearray | memoryview, name: str) -> GGUFFile:
    """Validate the header of a whole GGUF file held in memory (or mapped)."""
    view = memoryview(data).cast("B")
    return _parse(_Cursor(lambda offset, n: bytes(view[offset : offset + n]), len(view), name))


class _Cursor:
    """Reads the header front to back, fetching it in growing chunks and never past the cap."""

    def __init__(self, read_at: Callable[[int, int], bytes], file_size: int, name: str) -> None:
        self.buf = bytearray()
        self.pos = 0
        self.file_size = file_size
        self.limit = min(file_size, MAX_HEADER_SIZE)
        self.name = name
        self._read_at = read_at

    def fail(self, why: str) -> NoReturn:
        raise MalformedFileError(self.name, why)

    def take(self, n: int) -> int:
        """Claim the next ``n`` bytes; returns where they start in ``buf``."""
        start, end = self.pos, self.pos + n
        if end > self.limit:
            if end > self.file_size:
                self.fail(f"file ends inside the header (byte {end} of {self.file_size} needed)")
            self.fail(f"header exceeds the limit of {MAX_HEADER_SIZE} bytes")
        if end > len(self.buf):
            have = len(self.buf)
            want = min(self.limit, max(end, 2 * have, _FIRST_CHUNK)) - have
            self.buf += self._read_at(have, want)
            if len(self.buf) < end:
                self.fail("file ended while its header was read (was it changed?)")
        self.pos = end
        return start

    def check_count(self, count: int, min_size: int, what: str) -> None:
        """Refuse a count that cannot fit in what is left, before anything is allocated for it."""
        if count * min_size > self.limit - self.pos:
            self.fail(f"{what} count {count} cannot fit in the {self.limit - self.pos} header bytes left")

    def scalar(self, codec: struct.Struct) -> Any:
        return codec.unpack_from(self.buf, self.take(codec.size))[0]

    def string(self) -> str:
        n = self.scalar(_U64)
        if n > _MAX_STRING:
            self.fail(f"string of {n} bytes at offset {self.pos - 8} exceeds the {_MAX_STRING >> 20} MiB limit")
        start = self.take(n)
        try:
            return self.buf[start : start + n].decode("utf-8")
        except UnicodeDecodeError:
            self.fail(f"string at offset {start} is not valid UTF-8")

    def value(self, vtype: int, depth: int) -> Any:
        codec = _SCALARS.get(vtype)
        if codec is not None:
            value = self.scalar(codec)
            return self._bools((value,))[0] if vtype == _BOOL else value
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            return self.array(depth + 1)
        self.fail(f"unknown value type {vtype} at offset {self.pos - 4}")

    def array(self, depth: int) -> tuple[Any, ...]:
        if depth > _MAX_ARRAY_DEPTH:
            self.fail(f"arrays nested deeper than {_MAX_ARRAY_DEPTH} levels")
        etype, count = self.scalar(_U32), self.scalar(_U64)
        codec = _SCALARS.get(etype)
        if codec is not None:
            self.check_count(count, codec.size, "array element")
            values = struct.unpack_from(f"<{count}{codec.format[1:]}", self.buf, self.take(count * codec.size))
            return self._bools(values) if etype == _BOOL else values
        if etype == _STRING:
            self.check_count(count, _MIN_STRING, "string array element")
            return tuple(self.string() for _ in range(count))
        if etype == _ARRAY:
            self.check_count(count, _MIN_ARRAY, "nested array")
            return tuple(self.array(depth + 1) for _ in range(count))
        self.fail(f"unknown array element type {etype} at offset {self.pos - 12}")

    def _bools(self, raw: tuple[int, ...]) -> tuple[bool, ...]:
        if raw and max(raw) > 1:
            self.fail(f"boolean byte other than 0 or 1 before offset {self.pos}")
        return tuple(v == 1 for v in raw)


def _parse(c: _Cursor) -> GGUFFile:
    c.take(4)
    if c.buf[:4] != b"GGUF":
        c.fail("missing GGUF magic")
    version = _version(c, c.scalar(_U32))
    tensor_count, kv_count = c.scalar(_U64), c.scalar(_U64)
    c.check_count(kv_count * _MIN_KV + tensor_count * _MIN_TENSOR_INFO, 1, "key/value and tensor")

    metadata: dict[str, Any] = {}
    alignment = _DEFAULT_ALIGNMENT
    for _ in range(kv_count):
        key = c.string()
        if not key or key in metadata:
            c.fail(f"empty or duplicate metadata key {key!r}")
        vtype = c.scalar(_U32)
        metadata[key] = c.value(vtype, 0)
        if key == "general.alignment":
            alignment = metadata[key]
            if vtype != _UINT32 or alignment < 1 or alignment > _MAX_ALIGNMENT or alignment & (alignment - 1):
                c.fail(f"general.alignment must be a uint32 power of two up to {_MAX_ALIGNMENT}")

    infos = [_tensor_info(c) for _ in range(tensor_count)]
    data_offset = -(-c.pos // alignment) * alignment
    tensors = tuple(_place(c, info, data_offset, alignment) for info in infos)
    if len({t.name for t in tensors}) != len(tensors):
        c.fail("duplicate tensor names")
    _check_disjoint(c, tensors)
    return GGUFFile(version, metadata, tensors, alignment, data_offset, c.file_size)


def _version(c: _Cursor, version: int) -> int:
    if version in (2, 3):
        return version
    if version in (2 << 24, 3 << 24):
        c.fail("big-endian GGUF files are not supported")
    c.fail(f"unsupported GGUF version {version} (only 2 and 3 are accepted)")


class _Info(NamedTuple):
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int


def _tensor_info(c: _Cursor) -> _Info:
    name = c.string()
    if not name or len(name.encode("utf-8")) > _MAX_TENSOR_NAME:
        c.fail(f"tensor name {name[:80]!r} is empty or longer than {_MAX_TENSOR_NAME} bytes")
    n_dims = c.scalar(_U32)
    if n_dims > _MAX_DIMS:
        c.fail(f"tensor {name!r} has {n_dims} dimensions (at most {_MAX_DIMS})")
    shape = struct.unpack_from(f"<{n_dims}Q", c.buf, c.take(8 * n_dims))
    return _Info(name, shape, c.scalar(_U32), c.scalar(_U64))


def _place(c: _Cursor, info: _Info, data_offset: int, alignment: int) -> GGUFTensor:
    name = info.name
    gtype = GGML_TYPES.get(info.ggml_type)
    if gtype is None:
        c.fail(f"tensor {name!r} has unknown ggml type {info.ggml_type}")
    n_elements = 1
    for dim in info.shape:
        n_elements *= dim
        if n_elements > _MAX_ELEMENTS or dim >= 1 << 63:
            c.fail(f"tensor {name!r}: shape {info.shape} is too large")
    ne0 = info.shape[0] if info.shape else 1  # ggml pads missing dimensions with 1
    if ne0 % gtype.block_size:
        c.fail(f"tensor {name!r}: first dimension {ne0} is not a multiple of the {gtype.name} block size")
    nbytes = n_elements // gtype.block_size * gtype.type_size
    if info.offset % alignment:
        c.fail(f"tensor {name!r}: offset {info.offset} is not a multiple of the alignment {alignment}")
    start = data_offset + info.offset
    if start + nbytes > c.file_size:
        c.fail(f"tensor {name!r}: bytes {start}..{start + nbytes} run past the end of the {c.file_size}-byte file")
    return GGUFTensor(name, info.shape, info.ggml_type, gtype.name, start, nbytes, n_elements)


def _check_disjoint(c: _Cursor, tensors: tuple[GGUFTensor, ...]) -> None:
    end, previous = 0, ""
    for t in sorted(tensors, key=lambda t: (t.offset, t.nbytes)):
        if t.offset < end:
            c.fail(f"tensor {t.name!r} overlaps tensor {previous!r}")
        end, previous = t.offset + t.nbytes, t.name
