"""SentencePiece tokenizer models (``tokenizer.model``): a protobuf, checked field by field.

The format has no magic bytes, so the only way to accept one without accepting any protobuf is to walk
its wire format completely, with bounds, and require the shape of a ModelProto with pieces.
"""

from __future__ import annotations

from collections.abc import Iterator

from sbom.errors import MalformedFileError

__all__ = ["check_sentencepiece"]


def check_sentencepiece(data: bytes, name: str) -> None:
    """Walk the whole ModelProto: known fields only, each piece well-formed, every byte accounted for.

    Only data starting with a piece gets here, so a model without pieces cannot pass.
    """
    for field, wire, start, end in _protobuf_fields(data, 0, len(data), name):
        if not 1 <= field <= 5 or wire != 2:
            raise MalformedFileError(name, f"ModelProto field {field} with wire type {wire}")
        if field == 1:
            _check_piece(data, start, end, name)
        else:
            for _ in _protobuf_fields(data, start, end, name):
                pass  # trainer, normalizer and self-test specs: well-formed wire data is enough


_PIECE_FIELDS = {1: 2, 2: 5, 3: 0}  # piece: string, score: float (fixed32), type: enum (varint)


def _check_piece(data: bytes, start: int, end: int, name: str) -> None:
    seen: set[int] = set()
    for field, wire, vstart, vend in _protobuf_fields(data, start, end, name):
        if _PIECE_FIELDS.get(field) != wire or field in seen:
            raise MalformedFileError(name, f"piece at {start} has unexpected or repeated field {field}")
        seen.add(field)
        if field == 1:
            try:
                data[vstart:vend].decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedFileError(name, f"piece at {start} is not valid UTF-8") from None
        elif field == 3 and not 1 <= _varint(data, vstart, vend, name)[0] <= 6:
            raise MalformedFileError(name, f"piece at {start} has an unknown type")
    if 1 not in seen:
        raise MalformedFileError(name, f"piece at {start} has no text")


def _protobuf_fields(data: bytes, pos: int, end: int, name: str) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(field, wire type, start, end)`` for each field of the message in ``data[pos:end]``."""
    while pos < end:
        key, pos = _varint(data, pos, end, name)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise MalformedFileError(name, f"protobuf field number 0 at {pos}")
        if wire == 0:
            vstart, (_, vend) = pos, _varint(data, pos, end, name)
        elif wire == 2:
            length, vstart = _varint(data, pos, end, name)
            vend = vstart + length
        elif wire in (1, 5):
            vstart, vend = pos, pos + (8 if wire == 1 else 4)
        else:
            raise MalformedFileError(name, f"protobuf wire type {wire} at {pos}")
        if vend > end:
            raise MalformedFileError(name, f"protobuf field {field} at {pos} runs past the end of its message")
        yield field, wire, vstart, vend
        pos = vend


def _varint(data: bytes, pos: int, end: int, name: str) -> tuple[int, int]:
    value = 0
    for i in range(10):
        if pos + i >= end:
            break
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            return value, pos + i + 1
    raise MalformedFileError(name, f"truncated or overlong protobuf varint at {pos}")
