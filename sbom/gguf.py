"""A strict, bounded reader for GGUF (versions 2 and 3): metadata, tensor table and data offsets.

GGUF puts every length and count in the file, so a hostile file can claim an array of 2**60 strings.
Each count is checked against the bytes that remain before anything is allocated, the whole header is
capped, and only the header region is read: tensor data is never touched. Tensor sizes follow from
the ggml type table, and every tensor must be aligned, lie inside the file and overlap no other, since
the inference engine loads tensors from the offsets returned here.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, NamedTuple, NoReturn

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
    9: GGMLType("Q8_1", 32, 36),
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
"""ggml types by their numeric id (ggml.h); a type missing here is refused rather than guessed."""
