"""The format firewall: what each model file is, decided from its bytes, on an allowlist.

A file's name says nothing about what a loader will do with it: ``model.safetensors`` can hold a
pickle, and ``pytorch_model.bin`` is one. So the format is read from the content, and only formats
that cannot carry code pass: safetensors and GGUF (each validated in full by its strict parser),
strict JSON, UTF-8 text (no control characters but whitespace) and SentencePiece tokenizer models.
Known code-carrying formats are refused by kind (pickle, PyTorch and Keras archives, NumPy, HDF5,
compressed joblib pickles), and anything else is refused as unrecognised: the firewall fails closed.
A file that is an accepted format and also a ZIP or HDF5 container (a polyglot that another loader
would read differently) is refused too.

An empty file counts as text: it holds nothing to load, and tokenizer folders ship empty files.
"""

from __future__ import annotations

import codecs
import json
import lzma
import os
import pickletools
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import NoReturn

from sbom.errors import MalformedFileError, RefusedFormatError
from sbom.gguf import parse_gguf, read_gguf
from sbom.inventory import open_regular_file
from sbom.safetensors import parse_safetensors_header, read_safetensors_header
from sbom.sentencepiece import check_sentencepiece
from sbom.strict_json import load_strict_json

__all__ = ["MAX_DOCUMENT_SIZE", "MAX_JSON_DEPTH", "FileFormat", "detect_format", "detect_format_of"]

MAX_DOCUMENT_SIZE = 64 << 20
"""The largest JSON, text or SentencePiece file; real tokenizer files stay well under it."""

MAX_JSON_DEPTH = 64

_HEAD = 4096
_ZIP_CD_LIMIT = 1 << 20  # central directories beyond this are refused without naming the kind
_BINARY_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f]")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_NPY_OBJECT = re.compile(rb"""['"][|<>=]?O['"]""")
_PICKLE_SCAN_OPS = 100_000
_PICKLE_GLOBAL = re.compile(r"[A-Za-z_][\w.]* [A-Za-z_][\w.]*\Z")

_Decompress = Callable[[bytes, int], bytes]


class FileFormat(StrEnum):
    """A format that passes the firewall; the value is how SBOMs and reports name it."""

    SAFETENSORS = "safetensors"
    GGUF = "gguf"
    JSON = "json"
    TEXT = "text"
    SENTENCEPIECE = "sentencepiece"


def detect_format(path: Path, name: str | None = None) -> FileFormat:
    """Return the format of the file at ``path`` or raise why it is not allowed.

    ``name`` is how errors refer to the file (its path relative to the model root). Raises
    UnsafePathError for anything but a regular file, RefusedFormatError for a format outside the
    allowlist, and MalformedFileError for a file that breaks the rules of an allowed format.
    """
    name = name if name is not None else str(path)
    file, size = open_regular_file(path, name)
    with file:
        fd = file.fileno()
        source = _Source(
            size,
            lambda n, offset: os.pread(fd, n, offset),
            lambda: read_gguf(file, size, name),
            lambda: read_safetensors_header(file, size, name),
        )
        return _classify(source, name)


def detect_format_of(data: bytes | bytearray | memoryview, name: str) -> FileFormat:
    """``detect_format`` for bytes already in memory: the engine checks the very buffer it verified."""
    view = memoryview(data).cast("B")
    source = _Source(
        len(view),
        lambda n, offset: bytes(view[offset : offset + n]),
        lambda: parse_gguf(view, name),
        lambda: parse_safetensors_header(view, name),
    )
    return _classify(source, name)


@dataclass(frozen=True, slots=True)
class _Source:
    """Where the classifier reads from: positional reads, plus the strict parsers bound to the same bytes."""

    size: int
    pread: Callable[[int, int], bytes]
    gguf: Callable[[], object]
    safetensors: Callable[[], object]


def _classify(source: _Source, name: str) -> FileFormat:
    size, pread = source.size, source.pread
    if size == 0:
        return FileFormat.TEXT
    head = pread(min(size, _HEAD), 0)
    if head[:4] == b"GGUF" and (len(head) < 8 or 0 in head[4:8]):  # a real version field has zero bytes
        source.gguf()
        weights: FileFormat | None = FileFormat.GGUF
    elif len(head) > 8 and head[8:9] == b"{" and head[4:8] == bytes(4):  # u64 length < 2**32, then '{'
        source.safetensors()
        weights = FileFormat.SAFETENSORS
    else:
        weights = None
    container = _container_kind(pread, size)
    if container is not None:
        _refuse(name, container if weights is None else f"{weights} file that is also a {container}")
    if weights is not None:
        return weights

    magic = _magic_kind(head)
    if magic is not None:
        _refuse(name, magic)
    if size > MAX_DOCUMENT_SIZE:
        if _utf8_text(head, final=False) is not None:
            _malformed(name, f"text file larger than the {MAX_DOCUMENT_SIZE >> 20} MiB limit")
        _refuse(name, "unrecognised binary format")
    data = _read_all(pread, size, name)
    if _is_pickle(data):
        _refuse(name, "Python pickle (protocol 0 or 1)")
    not_sentencepiece = ""
    if data[:1] == b"\n":  # field 1 (pieces), length-delimited: how every ModelProto starts
        try:
            check_sentencepiece(data, name)
        except MalformedFileError as exc:
            not_sentencepiece = f" (not a SentencePiece model: {exc.why})"
        else:
            return FileFormat.SENTENCEPIECE
    text = _utf8_text(data, final=True)
    if text is None:
        _refuse(name, "unrecognised binary format" + not_sentencepiece)
    return _json_or_text(text, name)


def _magic_kind(head: bytes) -> str | None:
    """Name the code-carrying format that ``head`` starts with, if any."""
    if _pickle_protocol(head):
        return f"Python pickle (protocol {head[1]})"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "ZIP archive"
    if head[:6] == b"\x93NUMPY":
        if _NPY_OBJECT.search(head[8:]):
            return "NumPy object array (pickle)"
        return "NumPy array (not an accepted weight format)"
    if head[:2] == b"\x1f\x8b":
        return _compressed("gzip", zlib.decompressobj(wbits=31).decompress, head)
    if head[:6] == b"\xfd7zXZ\x00":
        return _compressed("xz", lzma.LZMADecompressor().decompress, head)
    if head[:4] == b"\x04\x22\x4d\x18":
        return "lz4-compressed data (joblib)"
    if head[:1] == b"x" and head[1:2] in (b"\x01", b"^", b"\x9c", b"\xda"):
        # Two bytes are too weak a sign on their own ("x^2" is text): name it only if a pickle is inside.
        kind = _compressed("zlib", zlib.decompressobj().decompress, head)
        return kind if "pickle" in kind else None
    return None


def _compressed(algorithm: str, decompress: _Decompress, head: bytes) -> str:
    try:
        inner = decompress(head, 64)
    except (zlib.error, lzma.LZMAError, EOFError):
        inner = b""
    if _pickle_protocol(inner):
        return f"{algorithm}-compressed Python pickle (joblib)"
    return f"{algorithm}-compressed data"


def _pickle_protocol(head: bytes) -> bool:
    """Protocols 2 to 5 open with the PROTO opcode and the protocol number."""
    return len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5


def _container_kind(pread: Callable[[int, int], bytes], size: int) -> str | None:
    """Name a ZIP or HDF5 container anywhere its readers would find it: ZIP at the end, HDF5 at 0 or 512·2^k."""
    offset = 0
    while offset + 8 <= size:
        if pread(8, offset) == _HDF5_MAGIC:
            return "HDF5 file (Keras .h5 / h5py)"
        offset = max(512, offset * 2)
    return _zip_kind(pread, size)


def _zip_kind(pread: Callable[[int, int], bytes], size: int) -> str | None:
    """Find a ZIP central directory the way ZIP readers do: from the end record, ZIP64 included."""
    tail_size = min(size, 22 + 0xFFFF)
    base = size - tail_size
    tail = pread(tail_size, base)
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or end + 22 > len(tail):
        return None
    record = base + end
    cd_size, cd_offset = struct.unpack_from("<II", tail, end + 12)
    locator = end - 20
    if locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
        record = base + locator - 56  # the ZIP64 end record sits just before its locator
        zip64 = pread(56, record) if record >= 0 else b""
        if zip64[:4] != b"PK\x06\x06":
            return "ZIP archive (ZIP64)"
        cd_size, cd_offset = struct.unpack_from("<QQ", zip64, 40)
    elif 0xFFFFFFFF in (cd_size, cd_offset):
        return None  # claims ZIP64 without the locator that ZIP64 readers need
    # Readers differ: some trust the recorded offset, others take the directory to end at the record.
    starts = [s for s in (record - cd_size, cd_offset) if 0 <= s < size and pread(4, s) == b"PK\x01\x02"]
    if not starts:
        return None
    if cd_size > _ZIP_CD_LIMIT:
        return "ZIP archive"
    names = list(_zip_names(pread(cd_size, starts[0])))
    if any(n.endswith(".pkl") for n in names):
        return "PyTorch checkpoint (ZIP with pickle)"
    if names and all(n.endswith(".npy") for n in names):
        return "NumPy .npz archive"
    if "config.json" in names and "model.weights.h5" in names:
        return "Keras v3 archive"
    return "ZIP archive"


def _zip_names(cd: bytes) -> Iterator[str]:
    pos = 0
    while pos + 46 <= len(cd) and cd[pos : pos + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", cd, pos + 28)
        yield cd[pos + 46 : pos + 46 + name_len].decode("utf-8", "replace")
        pos += 46 + name_len + extra_len + comment_len


def _is_pickle(data: bytes) -> bool:
    """Whether ``data`` parses as pickle opcodes from its first byte to a STOP (nothing is executed).

    Protocols 0 and 1 have no magic number, and protocol 0 is printable text, so this runs before a
    file may pass as text. Imports must name real identifiers, which keeps ordinary prose out.
    """
    ops = 0
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name == "STOP":
                return ops > 0
            if op.name in ("GLOBAL", "INST") and not _PICKLE_GLOBAL.match(str(arg)):
                return False
            ops += 1
            if ops == _PICKLE_SCAN_OPS:
                return True  # no text or tokenizer model runs this long as valid opcodes
    except ValueError:
        return False
    return False


def _json_or_text(text: str, name: str) -> FileFormat:
    """Text that any JSON parser accepts must be strict JSON; text that none does is plain text."""
    try:
        doc = load_strict_json(text, name)
    except json.JSONDecodeError:
        return FileFormat.TEXT
    stack = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            if depth > MAX_JSON_DEPTH:
                _malformed(name, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
            stack.extend((child, depth + 1) for child in node)
    return FileFormat.JSON


def _utf8_text(data: bytes, *, final: bool) -> str | None:
    """Decode ``data`` as text: valid UTF-8 whose only control characters are whitespace.

    Refusing the other controls keeps binary formats out, protobuf in particular, whose field tags
    would otherwise pass as characters. ``final=False`` decodes a prefix.
    """
    if _BINARY_CONTROL.search(data):
        return None
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(data, final)
    except UnicodeDecodeError:
        return None


def _read_all(pread: Callable[[int, int], bytes], size: int, name: str) -> bytes:
    data = pread(size, 0)
    if len(data) != size:
        _malformed(name, "file changed size while it was read")
    return data


def _refuse(name: str, kind: str) -> NoReturn:
    raise RefusedFormatError(name, kind)


def _malformed(name: str, why: str) -> NoReturn:
    raise MalformedFileError(name, why)
