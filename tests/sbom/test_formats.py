from __future__ import annotations

import gzip
import io
import json
import lzma
import os
import pickle
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sbom.formats
from sbom.errors import MalformedFileError, RefusedFormatError, SbomError, UnsafePathError
from sbom.formats import MAX_JSON_DEPTH, FileFormat, detect_format, detect_format_of
from sbom.gguf import parse_gguf

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _detect(tmp_path: Path, name: str, data: bytes) -> FileFormat:
    path = tmp_path / name
    path.write_bytes(data)
    return detect_format(path, name)


def _refused(tmp_path: Path, name: str, data: bytes, kind: str) -> None:
    with pytest.raises(RefusedFormatError) as info:
        _detect(tmp_path, name, data)
    assert (info.value.path, info.value.kind) == (name, kind)
    assert str(info.value).startswith(f"{name}: refused {kind}") and "safetensors" in str(info.value)


# A tiny protobuf encoder for SentencePiece ModelProto messages.
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    body = _varint(len(payload)) + payload if wire == 2 else payload
    return _varint(number << 3 | wire) + body


def _piece(text: str, score: float, kind: int = 1) -> bytes:
    message = _field(1, 2, text.encode()) + _field(2, 5, struct.pack("<f", score)) + _field(3, 0, _varint(kind))
    return _field(1, 2, message)


def _sentencepiece(*pieces: bytes) -> bytes:
    trainer = _field(2, 2, _field(1, 2, b"corpus.txt") + _field(3, 0, _varint(8000)) + _field(40, 0, _varint(1)))
    normalizer = _field(3, 2, _field(1, 2, b"nmt_nfkc") + _field(2, 2, bytes(range(40))) + _field(3, 0, b"\x01"))
    return b"".join(pieces) + trainer + normalizer


SENTENCEPIECE = _sentencepiece(
    _piece("<unk>", 0.0, 2), _piece("<s>", 0.0, 3), _piece("▁the", -3.5), _piece("<0x0A>", 0.0, 6)
)


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buf.getvalue()


def _torch_save(**kwargs: bool) -> bytes:
    buf = io.BytesIO()
    torch.save({"weight": torch.zeros(2, 2)}, buf, **kwargs)
    return buf.getvalue()


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo owned",))


# ---- accepted formats -------------------------------------------------------------------------


def test_weights_are_recognised_and_validated(tmp_path: Path, small_safetensors: bytes, small_gguf: bytes) -> None:
    assert _detect(tmp_path, "pytorch_model.bin", small_safetensors) is FileFormat.SAFETENSORS  # bytes, not name
    assert _detect(tmp_path, "model.safetensors", small_safetensors) is FileFormat.SAFETENSORS
    assert _detect(tmp_path, "model.gguf", small_gguf) is FileFormat.GGUF


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("config.json", json.dumps({"model_type": "llama", "rope": {"theta": 1e4}, "ids": [1, 2]}).encode(), "json"),
        ("list.json", b"[1, 2.5, null, true]", "json"),
        ("nested.json", b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, "json"),
        ("README.md", "---\nlicense: apache-2.0\n---\n# Tiny ✓\n".encode(), "text"),
        ("badge.md", b"[![CI](https://x/y.svg)](https://x)\n", "text"),
        ("chat_template.jinja", b"{% for m in messages %}{{ m['content'] }}{% endfor %}", "text"),
        ("merges.txt", b"#version: 0.2\n\xc4\xa0 t\nh e\n", "text"),
        ("vocab.txt", b"[PAD]\n[UNK]\nthe\n", "text"),
        ("LICENSE", b"(c) 2024 Example\nAll rights reserved\n.\n", "text"),
        ("empty.txt", b"", "text"),
        ("tokenizer.model", SENTENCEPIECE, "sentencepiece"),
    ],
)
def test_documents_are_recognised(tmp_path: Path, name: str, data: bytes, expected: str) -> None:
    assert _detect(tmp_path, name, data) == expected


# ---- refused formats ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [0, 1])
def test_unmarked_pickles_are_refused(tmp_path: Path, protocol: int) -> None:
    _refused(tmp_path, "model.ckpt", pickle.dumps(_Exploit(), protocol=protocol), "Python pickle (protocol 0 or 1)")
    _refused(tmp_path, "data.pkl", pickle.dumps({"a": [1, 2]}, protocol=protocol), "Python pickle (protocol 0 or 1)")


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_marked_pickles_are_refused(tmp_path: Path, protocol: int) -> None:
    data = pickle.dumps(_Exploit(), protocol=protocol)
    _refused(tmp_path, "model.safetensors", data, f"Python pickle (protocol {protocol})")


def test_pytorch_checkpoints_are_refused(tmp_path: Path) -> None:
    _refused(tmp_path, "pytorch_model.bin", _torch_save(), "PyTorch checkpoint (ZIP with pickle)")
    _refused(tmp_path, "legacy.pt", _torch_save(_use_new_zipfile_serialization=False), "Python pickle (protocol 2)")


def test_numpy_files_are_refused(tmp_path: Path) -> None:
    _refused(tmp_path, "objects.npy", _npy(np.array([{"a": 1}, None], dtype=object)), "NumPy object array (pickle)")
    _refused(tmp_path, "plain.npy", _npy(np.zeros(3)), "NumPy array (not an accepted weight format)")
    buf = io.BytesIO()
    np.savez(buf, a=np.zeros(2), b=np.ones(3))
    _refused(tmp_path, "weights.npz", buf.getvalue(), "NumPy .npz archive")


def test_compressed_pickles_are_refused(tmp_path: Path) -> None:
    inner = pickle.dumps(_Exploit(), protocol=4)
    _refused(tmp_path, "model.joblib", gzip.compress(inner), "gzip-compressed Python pickle (joblib)")
    _refused(tmp_path, "model.z", zlib.compress(inner), "zlib-compressed Python pickle (joblib)")
    _refused(tmp_path, "model.xz", lzma.compress(inner), "xz-compressed Python pickle (joblib)")
    _refused(tmp_path, "model.lz4", b"\x04\x22\x4d\x18" + bytes(16), "lz4-compressed data (joblib)")
    _refused(tmp_path, "notes.gz", gzip.compress(b"just text"), "gzip-compressed data")


def test_keras_and_hdf5_are_refused(tmp_path: Path) -> None:
    keras = _zip({"metadata.json": b"{}", "config.json": b"{}", "model.weights.h5": HDF5_MAGIC})
    _refused(tmp_path, "model.keras", keras, "Keras v3 archive")
    hdf5 = HDF5_MAGIC + bytes([0, 0, 0, 0, 8, 8, 0, 4]) + bytes(200)
    _refused(tmp_path, "model.h5", hdf5, "HDF5 file (Keras .h5 / h5py)")
    _refused(tmp_path, "userblock.h5", bytes(512) + hdf5, "HDF5 file (Keras .h5 / h5py)")


def test_other_zips_and_binaries_are_refused(tmp_path: Path) -> None:
    _refused(tmp_path, "bundle.zip", _zip({"README.md": b"hi"}), "ZIP archive")
    _refused(tmp_path, "empty.zip", _zip({}), "ZIP archive")
    saved_model = _field(1, 0, _varint(1)) + _field(2, 2, _field(1, 2, b"serve"))  # saved_model.pb-like protobuf
    _refused(tmp_path, "saved_model.pb", saved_model, "unrecognised binary format")
    _refused(tmp_path, "weights.bin", bytes(range(256)) * 4, "unrecognised binary format")
    _refused(tmp_path, "nul.txt", b"text with a \x00 byte", "unrecognised binary format")
    _refused(tmp_path, "escape.txt", b"text with an \x1b[1m escape", "unrecognised binary format")
    _refused(tmp_path, "no-pieces.model", _sentencepiece(), "unrecognised binary format")
    _refused(tmp_path, "latin1.txt", "café".encode("latin-1"), "unrecognised binary format")


BROKEN_SENTENCEPIECE = [
    ("no text", _sentencepiece(_piece("a", 0.0), _field(1, 2, _field(2, 5, bytes(4)))), "has no text"),
    ("bad type", _sentencepiece(_piece("a", 0.0, kind=9)), "has an unknown type"),
    ("unknown field", _sentencepiece(_piece("a", 0.0)) + _field(9, 2, b""), "ModelProto field 9 with wire type 2"),
    ("truncated", _sentencepiece(_piece("a", 0.0))[:-1], "runs past the end of its message"),
    ("bad utf-8", _sentencepiece(_field(1, 2, _field(1, 2, b"\xff"))), "is not valid UTF-8"),
    ("repeated", _sentencepiece(_field(1, 2, _field(1, 2, b"a") * 2)), "unexpected or repeated field 1"),
    ("group wire type", _sentencepiece(_piece("a", 0.0)) + b"\x1b", "protobuf wire type 3"),
]


@pytest.mark.parametrize(
    ("model", "why"), [(m, w) for _, m, w in BROKEN_SENTENCEPIECE], ids=[i for i, _, _ in BROKEN_SENTENCEPIECE]
)
def test_broken_sentencepiece_models_are_refused_with_the_reason(tmp_path: Path, model: bytes, why: str) -> None:
    with pytest.raises(RefusedFormatError) as info:
        _detect(tmp_path, "tokenizer.model", model)
    assert info.value.kind.startswith("unrecognised binary format (not a SentencePiece model: ")
    assert why in info.value.kind


def test_polyglots_are_refused(tmp_path: Path, make_safetensors: Callable[..., bytes], small_gguf: bytes) -> None:
    """A valid weight file that is also a PyTorch ZIP or an HDF5 file would load differently by name."""
    checkpoint = _torch_save()
    polyglot = make_safetensors({"w": ("U8", [len(checkpoint)], checkpoint)})
    kind = "safetensors file that is also a PyTorch checkpoint (ZIP with pickle)"
    _refused(tmp_path, "pytorch_model.bin", polyglot, kind)
    hidden = bytearray(small_gguf)
    offset = 1024  # a place where HDF5 readers look, inside the tensor data
    assert parse_gguf(small_gguf, "m").data_offset <= offset < len(small_gguf) - 8
    hidden[offset : offset + 8] = HDF5_MAGIC
    _refused(tmp_path, "model.gguf", bytes(hidden), "gguf file that is also a HDF5 file (Keras .h5 / h5py)")


# ---- malformed files of allowed formats --------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b'{"a": 1, "a": 2}', "duplicate JSON key 'a'"),
        (b'{"loss": NaN}', "JSON value NaN is not allowed"),
        (b"[Infinity]", "JSON value Infinity is not allowed"),
        (b"[-Infinity]", "JSON value -Infinity is not allowed"),
        (b"[1e999]", "overflows to infinity"),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), f"nested deeper than {MAX_JSON_DEPTH} levels"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    ],
)
def test_strict_json_rules(tmp_path: Path, data: bytes, why: str) -> None:
    with pytest.raises(MalformedFileError, match=re.escape(why)) as info:
        _detect(tmp_path, "config.json", data)
    assert info.value.path == "config.json"


def test_malformed_weights_keep_their_parser_reason(
    tmp_path: Path, small_safetensors: bytes, small_gguf: bytes
) -> None:
    with pytest.raises(MalformedFileError, match="bytes after the last tensor"):
        _detect(tmp_path, "model.safetensors", small_safetensors + b"\x00")
    with pytest.raises(MalformedFileError, match="run past the end of the"):
        _detect(tmp_path, "model.gguf", small_gguf[:1100])


def test_documents_over_the_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sbom.formats, "MAX_DOCUMENT_SIZE", 64)
    with pytest.raises(MalformedFileError, match="text file larger than the"):
        _detect(tmp_path, "merges.txt", b"a b\n" * 100)
    _refused(tmp_path, "blob", bytes(range(256)), "unrecognised binary format")


# ---- what is opened ----------------------------------------------------------------------------


def test_only_regular_files_are_opened(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text("{}")
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UnsafePathError, match="cannot open"):
        detect_format(tmp_path / "link.json", "link.json")
    with pytest.raises(UnsafePathError, match="not a regular file"):
        detect_format(tmp_path / "fifo", "fifo")  # must not block waiting for a writer
    with pytest.raises(UnsafePathError, match="not a regular file"):
        detect_format(tmp_path)
    with pytest.raises(UnsafePathError, match="missing"):
        detect_format(tmp_path / "missing")


def test_error_names_default_to_the_path(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(1, protocol=4))
    with pytest.raises(RefusedFormatError) as info:
        detect_format(path)
    assert info.value.path == str(path)


FUZZ = settings(max_examples=200, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
PREFIXES = [b"", b"PK\x03\x04", b"\x93NUMPY\x01\x00", b"\x80\x04", b"\x1f\x8b", b"x\x9c", b"\n", b"{", b"GGUF", b"("]


def _detector(path: Path) -> Callable[[bytes, str], FileFormat]:
    def detect(data: bytes, name: str) -> FileFormat:
        path.write_bytes(data)
        return detect_format(path, name)

    return detect


@FUZZ
@given(st.sampled_from(PREFIXES), st.binary(max_size=512))
def test_random_files_only_raise_sbom_errors(
    tmp_path_factory: pytest.TempPathFactory, parse_or_none: Callable[..., Any], prefix: bytes, rest: bytes
) -> None:
    parse_or_none(_detector(tmp_path_factory.getbasetemp() / "fuzz.bin"), prefix + rest)


@FUZZ
@given(st.data())
def test_mutated_files_only_raise_sbom_errors(
    tmp_path_factory: pytest.TempPathFactory,
    small_safetensors: bytes,
    mutations: Callable[[bytes], st.SearchStrategy[bytes]],
    parse_or_none: Callable[..., Any],
    data: st.DataObject,
) -> None:
    valid = data.draw(st.sampled_from([SENTENCEPIECE, small_safetensors, _zip({"a/data.pkl": b"x"})]))
    parse_or_none(_detector(tmp_path_factory.getbasetemp() / "mutated.bin"), data.draw(mutations(valid)))


def _outcome(detect: Callable[[], FileFormat]) -> tuple[str, str]:
    try:
        return "ok", str(detect())
    except SbomError as exc:
        return type(exc).__name__, exc.reason


@FUZZ
@given(st.data())
def test_in_memory_detection_reaches_the_same_verdict_as_the_file(
    tmp_path_factory: pytest.TempPathFactory,
    small_safetensors: bytes,
    small_gguf: bytes,
    mutations: Callable[[bytes], st.SearchStrategy[bytes]],
    data: st.DataObject,
) -> None:
    """The engine classifies the buffer it verified; that must agree with the file check of `verify`."""
    valid = data.draw(st.sampled_from([SENTENCEPIECE, small_safetensors, small_gguf, b'{"alpha": 1, "beta": [1, 2, 3]}',
                                       b"plain text\nwith lines\n", pickle.dumps(list(range(20))),
                                       _zip({"a/data.pkl": b"x"})]))
    blob = data.draw(st.one_of(st.just(valid), mutations(valid)))
    path = tmp_path_factory.getbasetemp() / "same.bin"
    path.write_bytes(blob)
    assert _outcome(lambda: detect_format(path, "f")) == _outcome(lambda: detect_format_of(blob, "f"))
