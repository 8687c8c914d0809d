from __future__ import annotations

import io
import json
import re
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sbom.errors import MalformedFileError
from sbom.safetensors import parse_safetensors_header, read_safetensors_header

FUZZ = settings(max_examples=200, deadline=1000, suppress_health_check=[HealthCheck.too_slow])


def _raw(header: dict[str, Any] | str | bytes, data: bytes = b"", *, pad: bytes = b"") -> bytes:
    """A file from a header given as an object or as raw text, for headers no writer would produce."""
    if isinstance(header, dict):
        header = json.dumps(header)
    if isinstance(header, str):
        header = header.encode()
    return struct.pack("<Q", len(header) + len(pad)) + header + pad + data


def _t(dtype: Any, shape: list[Any], begin: Any, end: Any) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def test_header_fields_offsets_and_parameter_count(small_safetensors: bytes) -> None:
    header = parse_safetensors_header(small_safetensors, "model.safetensors")
    base = 8 + header.header_size
    assert header.header_size % 8 == 0
    assert header.file_size == len(small_safetensors)
    assert header.metadata == {"format": "pt"}
    assert [(t.name, t.dtype, t.shape) for t in header.tensors] == [
        ("embed.weight", "F32", (2, 3)),
        ("norm.weight", "BF16", (4,)),
        ("step", "I64", ()),
        ("empty", "U8", (0,)),
    ]
    assert [(t.start - base, t.end - base) for t in header.tensors] == [(0, 24), (24, 32), (32, 40), (40, 40)]
    assert header.parameter_count == 6 + 4 + 1 + 0
    embed = header.tensors[0]
    values = np.frombuffer(small_safetensors[embed.start : embed.end], dtype="<f4").reshape(embed.shape)
    assert values.tolist() == [[0, 1, 2], [3, 4, 5]]


def test_reading_an_open_file_matches_parsing_the_buffer(small_safetensors: bytes) -> None:
    stream = io.BytesIO(small_safetensors)
    stream.seek(17)  # the reader must not depend on where the file position was left
    assert read_safetensors_header(stream, len(small_safetensors), "m") == parse_safetensors_header(
        memoryview(small_safetensors), "m"
    )


def test_tensors_are_sorted_by_offset_not_by_header_order(make_safetensors: Callable[..., bytes]) -> None:
    data = make_safetensors({"b": ("U8", [2], b"ab"), "a": ("U8", [1], b"c")})
    assert [t.name for t in parse_safetensors_header(data, "m").tensors] == ["b", "a"]


def test_sub_byte_dtypes_must_fill_whole_bytes(make_safetensors: Callable[..., bytes]) -> None:
    assert parse_safetensors_header(make_safetensors({"q": ("F4", [2, 3], bytes(3))}), "m").parameter_count == 6
    with pytest.raises(MalformedFileError, match="do not fill whole bytes"):
        parse_safetensors_header(_raw({"q": _t("F4", [3], 0, 1)}, bytes(1)), "m")


def test_empty_header_and_no_tensors() -> None:
    assert parse_safetensors_header(_raw({}), "m").tensors == ()


def test_short_read_from_a_file_that_shrank(small_safetensors: bytes) -> None:
    with pytest.raises(MalformedFileError, match="file ended after"):
        read_safetensors_header(io.BytesIO(small_safetensors[:20]), len(small_safetensors), "m")


MALFORMED: list[tuple[str, bytes, str]] = [
    ("too short", b"\x02\x00\x00", "too short for the 8-byte header length"),
    ("length below 2", struct.pack("<Q", 1) + b"{", "is too small"),
    ("length beyond cap", struct.pack("<Q", (100 << 20) + 1) + b"{}", "exceeds the 100 MiB limit"),
    ("length past the file", struct.pack("<Q", 64) + b"{}", "runs past the end"),
    ("invalid utf-8", _raw(b'{"\xff":1}'), "not valid UTF-8"),
    ("not an object", _raw("[1, 2]"), "does not start with '{'"),
    ("leading space", _raw(" {}"), "does not start with '{'"),
    ("not json", _raw("{nope}"), "not valid JSON"),
    ("trailing newline", _raw("{}\n"), "followed only by spaces"),
    ("trailing garbage", _raw("{} x"), "not valid JSON"),
    ("duplicate key", _raw('{"a": %s, "a": %s}' % ((json.dumps(_t("U8", [0], 0, 0)),) * 2)), "duplicate JSON key 'a'"),
    ("NaN", _raw('{"__metadata__": {"a": NaN}}'), "NaN is not allowed"),
    ("metadata list", _raw({"__metadata__": ["a"]}), "__metadata__ is not a JSON object"),
    ("metadata int", _raw({"__metadata__": {"a": 1}}), "__metadata__['a'] is not a string"),
    ("tensor not object", _raw({"t": [1]}), "tensor 't' is not a JSON object"),
    ("extra key", _raw({"t": {**_t("U8", [0], 0, 0), "x": 1}}), "exactly the keys"),
    ("missing key", _raw({"t": {"dtype": "U8", "shape": [0]}}), "exactly the keys"),
    ("unknown dtype", _raw({"t": _t("F128", [0], 0, 0)}), "unknown dtype 'F128'"),
    ("dtype not str", _raw({"t": _t(4, [0], 0, 0)}), "unknown dtype 4"),
    ("bool dimension", _raw({"t": _t("U8", [True], 0, 1)}, b"x"), "shape must be a list"),
    ("negative dimension", _raw({"t": _t("U8", [-1], 0, 0)}), "shape must be a list"),
    ("float dimension", _raw({"t": _t("U8", [1.0], 0, 1)}, b"x"), "shape must be a list"),
    ("rank 9", _raw({"t": _t("U8", [1] * 9, 0, 1)}, b"x"), "at most 8"),
    ("three offsets", _raw({"t": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1, 1]}}, b"x"), "two non-negative"),
    ("negative offset", _raw({"t": _t("U8", [0], -1, -1)}), "two non-negative"),
    ("begin after end", _raw({"t": _t("U8", [0], 2, 1)}, b"xx"), "begin 2 is after end 1"),
    ("size mismatch", _raw({"t": _t("F32", [2, 3], 0, 20)}, bytes(20)), "needs 24 bytes but data_offsets span 20"),
    ("element overflow", _raw({"t": _t("U8", [2**31, 2**31, 2**31], 0, 0)}), "more than 2**62 elements"),
    (
        "overlap",
        _raw({"a": _t("U8", [4], 0, 4), "b": _t("U8", [4], 2, 6)}, bytes(6)),
        "tensor 'b' overlaps tensor 'a'",
    ),
    (
        "same region twice",
        _raw({"a": _t("U8", [4], 0, 4), "b": _t("U8", [4], 0, 4)}, bytes(4)),
        "overlaps tensor",
    ),
    ("hole", _raw({"a": _t("U8", [2], 0, 2), "b": _t("U8", [2], 3, 5)}, bytes(5)), "1 unused bytes after tensor 'a'"),
    ("gap at start", _raw({"a": _t("U8", [2], 1, 3)}, bytes(3)), "unused bytes at the start of the data"),
    ("trailing data", _raw({"a": _t("U8", [2], 0, 2)}, bytes(3)), "1 bytes after the last tensor"),
    ("past the end", _raw({"a": _t("U8", [4], 0, 4)}, bytes(2)), "ends 2 bytes past the end of the file"),
    ("data without tensors", _raw({}, b"x"), "1 bytes after the last tensor"),
]


@pytest.mark.parametrize(("data", "why"), [(d, w) for _, d, w in MALFORMED], ids=[i for i, _, _ in MALFORMED])
def test_malformed_headers_are_refused_with_their_reason(data: bytes, why: str) -> None:
    with pytest.raises(MalformedFileError, match=re.escape(why)) as info:
        parse_safetensors_header(data, "shard-1.safetensors")
    assert info.value.path == "shard-1.safetensors"


def test_trailing_spaces_are_the_only_allowed_padding() -> None:
    header = parse_safetensors_header(_raw({"a": _t("U8", [1], 0, 1)}, b"x", pad=b"     "), "m")
    assert header.tensors[0].start == 8 + header.header_size


@FUZZ
@given(st.binary(max_size=256))
def test_random_bytes_only_raise_sbom_errors(parse_or_none: Callable[..., Any], data: bytes) -> None:
    parse_or_none(parse_safetensors_header, data)


@FUZZ
@given(st.data())
def test_mutated_files_only_raise_sbom_errors(
    small_safetensors: bytes,
    mutations: Callable[[bytes], st.SearchStrategy[bytes]],
    parse_or_none: Callable[..., Any],
    data: st.DataObject,
) -> None:
    mutated = data.draw(mutations(small_safetensors))
    header = parse_or_none(parse_safetensors_header, mutated)
    if header is None:
        return
    # Whatever passes must still describe the file exactly.
    end = header.tensors[-1].end if header.tensors else 8 + header.header_size
    assert end == len(mutated)
