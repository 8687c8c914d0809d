from __future__ import annotations

import io
import re
import struct
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import gguf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sbom.gguf
from sbom.errors import MalformedFileError
from sbom.gguf import GGML_TYPES, GGUFFile, parse_gguf, read_gguf

REAL_MODEL = Path("/tmp/models/SmolLM2-135M-Instruct.Q4_1.gguf")
FUZZ = settings(max_examples=200, deadline=1000, suppress_health_check=[HealthCheck.too_slow])

# A minimal GGUF encoder for files the reference writer refuses to produce.
U8, BOOL, U32, STRING, ARRAY, U64 = 0, 7, 4, 8, 9, 10


def _s(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def _kv(key: str | bytes, vtype: int, payload: bytes) -> bytes:
    return _s(key) + struct.pack("<I", vtype) + payload


def _info(name: str | bytes, dims: Sequence[int], ggml_type: int = 0, offset: int = 0) -> bytes:
    return _s(name) + struct.pack(f"<I{len(dims)}QIQ", len(dims), *dims, ggml_type, offset)


def _file(kvs: Sequence[bytes] = (), infos: Sequence[bytes] = (), data: bytes = b"", *, version: int = 3) -> bytes:
    head = b"GGUF" + struct.pack("<IQQ", version, len(infos), len(kvs)) + b"".join(kvs) + b"".join(infos)
    return head + bytes(-len(head) % 32) + data


def _metadata(reader: gguf.GGUFReader) -> dict[str, Any]:
    return {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}


def _assert_matches_reference(ours: GGUFFile, path: Path) -> None:
    reader = gguf.GGUFReader(path)
    assert ours.alignment == reader.alignment and ours.data_offset == reader.data_offset
    assert [t.name for t in ours.tensors] == [t.name for t in reader.tensors]
    for mine, ref in zip(ours.tensors, reader.tensors, strict=True):
        assert (mine.ggml_type, mine.type_name) == (int(ref.tensor_type), ref.tensor_type.name)
        assert mine.shape == tuple(int(d) for d in ref.shape)
        assert (mine.offset, mine.nbytes, mine.n_elements) == (ref.data_offset, ref.n_bytes, ref.n_elements)
    reference = _metadata(reader)
    assert ours.metadata.keys() == reference.keys()
    for key, value in reference.items():
        mine = ours.metadata[key]
        assert (list(_flatten(mine)) if isinstance(mine, tuple) else mine) == value, key


def _flatten(values: tuple[Any, ...]) -> Iterator[Any]:
    """The reference reader returns nested arrays flattened."""
    for v in values:
        yield from _flatten(v) if isinstance(v, tuple) else (v,)


def test_small_file_matches_the_reference_reader(small_gguf: bytes, tmp_path: Path) -> None:
    path = tmp_path / "small.gguf"
    path.write_bytes(small_gguf)
    parsed = parse_gguf(small_gguf, "small.gguf")
    _assert_matches_reference(parsed, path)
    assert parsed.version == 3 and parsed.file_size == len(small_gguf)
    md = parsed.metadata
    assert md["general.architecture"] == "llama" and md["general.name"] == "tiny ünïcode model"
    assert (md["test.u8"], md["test.i8"], md["test.u16"], md["test.i16"]) == (200, -5, 60000, -300)
    assert (md["test.i32"], md["test.u64"], md["test.i64"]) == (-70000, 2**40, -(2**40))
    assert (md["test.f32"], md["test.f64"], md["test.bool"]) == (0.5, 1.25, True)
    assert md["tokenizer.ggml.tokens"] == ("<s>", "</s>", "héllo", "")
    assert md["test.nested"] == ((1, 2), (3, 4, 5))
    q8 = parsed.tensors[-1]
    assert (q8.type_name, q8.shape, q8.nbytes, q8.n_elements) == ("Q8_0", (32, 2), 68, 64)
    assert small_gguf[q8.offset : q8.offset + q8.nbytes] == bytes(range(68))
    assert parsed.parameter_count == 12 + 8 + 5 + 64


def test_reading_an_open_file_matches_parsing_the_buffer(small_gguf: bytes) -> None:
    assert read_gguf(io.BytesIO(small_gguf), len(small_gguf), "m") == parse_gguf(bytearray(small_gguf), "m")


def test_real_model_matches_the_reference_reader_quickly() -> None:
    if not REAL_MODEL.exists():
        pytest.skip(f"{REAL_MODEL} is absent; fetch SmolLM2-135M-Instruct Q4_1 there to run this check")
    with REAL_MODEL.open("rb") as fh:
        started = time.perf_counter()
        parsed = read_gguf(fh, REAL_MODEL.stat().st_size, REAL_MODEL.name)
        elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"parsing the header took {elapsed:.2f} s"
    _assert_matches_reference(parsed, REAL_MODEL)
    assert parsed.metadata["general.architecture"] == "llama"
    assert parsed.metadata["llama.context_length"] == 8192
    assert len(parsed.metadata["tokenizer.ggml.tokens"]) == 49152
    assert parsed.parameter_count == sum(t.n_elements for t in parsed.tensors) > 100_000_000


def test_type_table_agrees_with_the_reference_package() -> None:
    for value, gtype in GGML_TYPES.items():
        ref = gguf.GGMLQuantizationType(value)
        assert gtype.name == ref.name
        assert (gtype.block_size, gtype.type_size) == gguf.GGML_QUANT_SIZES[ref]


def test_scalar_tensors_have_one_element() -> None:
    parsed = parse_gguf(_file(infos=[_info("s", [])], data=bytes(4)), "m")
    assert (parsed.tensors[0].shape, parsed.tensors[0].n_elements, parsed.tensors[0].nbytes) == ((), 1, 4)


def test_custom_alignment_and_version_2() -> None:
    align = _kv("general.alignment", U32, struct.pack("<I", 64))
    head_len = len(b"GGUF") + 4 + 16 + len(align) + len(_info("t", [4], 0, 0))
    data = bytes(-head_len % 64) + bytes(16)
    raw = b"GGUF" + struct.pack("<IQQ", 2, 1, 1) + align + _info("t", [4], 0, 0) + data
    parsed = parse_gguf(raw, "m")
    assert (parsed.version, parsed.alignment, parsed.data_offset % 64) == (2, 64, 0)
    assert parsed.tensors[0].offset == parsed.data_offset


F32_4 = _info("t", [4])
MALFORMED: list[tuple[str, bytes, str]] = [
    ("not gguf", b"GGML" + bytes(20), "missing GGUF magic"),
    ("truncated", _file()[:10], "file ends inside the header"),
    ("version 1", _file(version=1), "unsupported GGUF version 1"),
    ("version 4", _file(version=4), "unsupported GGUF version 4"),
    ("big-endian", _file(version=3 << 24), "big-endian GGUF files are not supported"),
    ("huge counts", b"GGUF" + struct.pack("<IQQ", 3, 2**40, 2**40), "cannot fit"),
    ("huge string array", _file([_kv("a", ARRAY, struct.pack("<IQ", STRING, 2**60))]), "string array element count"),
    ("huge u64 array", _file([_kv("a", ARRAY, struct.pack("<IQ", U64, 2**61))]), "array element count"),
    ("huge nested array", _file([_kv("a", ARRAY, struct.pack("<IQ", ARRAY, 2**59))]), "nested array count"),
    ("string over cap", _file([_kv("a", STRING, struct.pack("<Q", 2**40))]), "exceeds the 16 MiB limit"),
    ("string past the end", _file([_kv("a", STRING, struct.pack("<Q", 1000))]), "file ends inside the header"),
    ("bad utf-8 key", _file([_kv(b"\xff", U8, b"\x01")]), "not valid UTF-8"),
    ("bad utf-8 value", _file([_kv("a", STRING, _s(b"\xc3("))]), "not valid UTF-8"),
    ("empty key", _file([_kv("", U8, b"\x01")]), "empty or duplicate metadata key ''"),
    ("duplicate key", _file([_kv("a", U8, b"\x01"), _kv("a", U8, b"\x02")]), "duplicate metadata key 'a'"),
    ("unknown value type", _file([_kv("a", 13, b"\x00")]), "unknown value type 13"),
    ("unknown element type", _file([_kv("a", ARRAY, struct.pack("<IQ", 99, 1))]), "unknown array element type 99"),
    ("bool 2", _file([_kv("a", BOOL, b"\x02")]), "boolean byte other than 0 or 1"),
    ("bool array", _file([_kv("a", ARRAY, struct.pack("<IQ", BOOL, 2) + b"\x01\x07")]), "boolean byte"),
    ("deep arrays", _file([_kv("a", ARRAY, struct.pack("<IQ", ARRAY, 1) * 9 + struct.pack("<IQ", U8, 0))]), "deeper"),
    ("alignment 48", _file([_kv("general.alignment", U32, struct.pack("<I", 48))]), "power of two"),
    ("alignment 0", _file([_kv("general.alignment", U32, struct.pack("<I", 0))]), "power of two"),
    ("alignment u64", _file([_kv("general.alignment", U64, struct.pack("<Q", 32))]), "must be a uint32"),
    ("unknown ggml type", _file(infos=[_info("t", [4], 31)], data=bytes(16)), "unknown ggml type 31"),
    ("five dims", _file(infos=[_info("t", [1] * 5)], data=bytes(4)), "5 dimensions"),
    ("long name", _file(infos=[_info("n" * 64, [1])], data=bytes(4)), "longer than 63 bytes"),
    ("empty name", _file(infos=[_info("", [1])], data=bytes(4)), "is empty"),
    ("bad utf-8 name", _file(infos=[_info(b"\xfe", [1])], data=bytes(4)), "not valid UTF-8"),
    ("duplicate tensor", _file(infos=[F32_4, _info("t", [4], 0, 32)], data=bytes(48)), "duplicate tensor names"),
    ("partial block", _file(infos=[_info("q", [16, 2], 8)], data=bytes(68)), "not a multiple of the Q8_0 block"),
    ("quantised scalar", _file(infos=[_info("q", [], 8)], data=bytes(34)), "first dimension 1 is not a multiple"),
    ("huge shape", _file(infos=[_info("t", [2**32, 2**32])], data=bytes(4)), "is too large"),
    ("dim over int64", _file(infos=[_info("t", [0, 2**63])]), "is too large"),
    ("misaligned", _file(infos=[_info("t", [4], 0, 8)], data=bytes(32)), "not a multiple of the alignment 32"),
    ("past the end", _file(infos=[F32_4], data=bytes(15)), "run past the end of the"),
    ("overlap", _file(infos=[_info("a", [16]), _info("b", [4], 0, 32)], data=bytes(64)), "'b' overlaps tensor 'a'"),
]


@pytest.mark.parametrize(("data", "why"), [(d, w) for _, d, w in MALFORMED], ids=[i for i, _, _ in MALFORMED])
def test_malformed_files_are_refused_with_their_reason(data: bytes, why: str) -> None:
    with pytest.raises(MalformedFileError, match=re.escape(why)) as info:
        parse_gguf(data, "model.gguf")
    assert info.value.path == "model.gguf"


def test_huge_claims_fail_fast_without_allocating() -> None:
    claims = [_file([_kv("a", ARRAY, struct.pack("<IQ", t, 2**60))]) for t in (STRING, U64, ARRAY, BOOL)]
    claims.append(b"GGUF" + struct.pack("<IQQ", 3, 2**63, 2**63))
    tracemalloc.start()
    try:
        started = time.perf_counter()
        for raw in claims:
            with pytest.raises(MalformedFileError):
                read_gguf(io.BytesIO(raw), len(raw), "m")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 0.5
    assert peak < 4 << 20


def test_header_size_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sbom.gguf, "MAX_HEADER_SIZE", 64)
    raw = _file([_kv("a", STRING, _s("x" * 100))])
    with pytest.raises(MalformedFileError, match="header exceeds the limit of 64 bytes"):
        parse_gguf(raw, "m")


def test_tensor_data_is_not_read(small_gguf: bytes) -> None:
    padded = small_gguf + bytes(8 << 20)  # trailing bytes are allowed; the reader must stop at the header

    class Counting(io.BytesIO):
        consumed = 0

        def read(self, n: int | None = -1) -> bytes:
            chunk = super().read(n)
            Counting.consumed += len(chunk)
            return chunk

    read_gguf(Counting(padded), len(padded), "m")
    assert Counting.consumed <= 1 << 20


@FUZZ
@given(st.binary(max_size=256), st.booleans())
def test_random_bytes_only_raise_sbom_errors(parse_or_none: Callable[..., Any], data: bytes, with_magic: bool) -> None:
    parse_or_none(parse_gguf, b"GGUF\x03\x00\x00\x00" + data if with_magic else data)


@FUZZ
@given(st.data())
def test_mutated_files_only_raise_sbom_errors(
    small_gguf: bytes,
    mutations: Callable[[bytes], st.SearchStrategy[bytes]],
    parse_or_none: Callable[..., Any],
    data: st.DataObject,
) -> None:
    mutated = data.draw(mutations(small_gguf))
    parsed = parse_or_none(parse_gguf, mutated)
    if parsed is None:
        return
    # Whatever passes must still keep every tensor inside the file, aligned and apart.
    spans = sorted((t.offset, t.offset + t.nbytes) for t in parsed.tensors)
    assert all(end <= len(mutated) and (start - parsed.data_offset) % parsed.alignment == 0 for start, end in spans)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))
