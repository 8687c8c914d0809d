"""Intel PCS's signed JSON: ``{"tcbInfo": {...}, "signature": "hex"}`` and the readers for its fields.

The signature covers the inner object exactly as the response spells it, so those bytes are sliced out
of the received text (after the whole document has been read strictly) and never re-serialized: two
serializers need not agree on spacing, key order or number forms, and the signature would then fail,
or worse, cover something else than what was read.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from attest.errors import EvidenceFormatError
from sbom.errors import MalformedFileError
from sbom.strict_json import load_strict_json

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "SignedDocument",
    "read_date",
    "read_hex",
    "read_int",
    "read_list",
    "read_object",
    "read_signed",
    "read_str",
]

MAX_DOCUMENT_BYTES = 1 << 20
"""Real TCB info is a few kilobytes; anything this large is refused before it is parsed."""

_WHITESPACE = " \t\n\r"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
_HEX = re.compile(r"[0-9a-fA-F]*")

SignedDocument = tuple[dict[str, Any], bytes, bytes]
"""The inner object, the exact bytes that were signed, and the raw r||s signature."""


def read_signed(raw: bytes, inner: str, what: str) -> SignedDocument:
    """The ``inner`` object of a PCS response, its exact signed bytes and its signature."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise EvidenceFormatError(f"{what} is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
        document = load_strict_json(text, what)
    except UnicodeDecodeError:
        raise EvidenceFormatError(f"{what} is not UTF-8 text") from None
    except MalformedFileError as exc:
        raise EvidenceFormatError(exc.reason) from None
    except ValueError as exc:  # json.JSONDecodeError
        raise EvidenceFormatError(f"{what} is not valid JSON: {exc}") from None
    read_object(document, what, required=(inner, "signature"))
    content = read_object(document[inner], f"{what}: {inner}")
    signature = read_hex(document["signature"], 64, f"{what}: signature")
    start, end = _member_spans(text)[inner]
    return content, text[start:end].encode("utf-8"), signature


def read_object(value: object, what: str, *, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> Any:
    """``value`` as a JSON object; with ``required`` given, exactly those fields and any of ``optional``."""
    if not isinstance(value, dict):
        raise EvidenceFormatError(f"{what} must be a JSON object")
    if required:
        missing = [k for k in required if k not in value]
        if missing:
            raise EvidenceFormatError(f"{what} lacks {', '.join(missing)}")
        unknown = sorted(set(value) - set(required) - set(optional))
        if unknown:
            raise EvidenceFormatError(f"{what} has unknown fields: {', '.join(unknown)}")
    return value


def read_list(value: object, what: str, *, size: int | None = None) -> list[Any]:
    if not isinstance(value, list):
        raise EvidenceFormatError(f"{what} must be a JSON array")
    if size is not None and len(value) != size:
        raise EvidenceFormatError(f"{what} must have {size} entries, not {len(value)}")
    return value


def read_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise EvidenceFormatError(f"{what} must be a string")
    return value


def read_int(value: object, what: str, *, limit: int) -> int:
    """A JSON integer in 0..``limit`` (booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise EvidenceFormatError(f"{what} must be an integer")
    if not 0 <= value <= limit:
        raise EvidenceFormatError(f"{what} is out of range (0..{limit})")
    return value


def read_hex(value: object, size: int, what: str) -> bytes:
    """Exactly ``size`` bytes as hex digits (Intel writes both cases)."""
    text = read_str(value, what)
    if len(text) != 2 * size or not _HEX.fullmatch(text):
        raise EvidenceFormatError(f"{what} must be {size} bytes as {2 * size} hex digits")
    return bytes.fromhex(text)


def read_date(value: object, what: str) -> datetime:
    """An ISO 8601 UTC time as the PCS writes it: ``2023-06-18T08:42:58Z``."""
    text = read_str(value, what)
    if not _DATE.fullmatch(text):
        raise EvidenceFormatError(f"{what} must be a UTC time like 2023-06-18T08:42:58Z, not {text[:40]!r}")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise EvidenceFormatError(f"{what} is not a valid date: {text!r}") from None


def _member_spans(text: str) -> dict[str, tuple[int, int]]:
    """Where each member value of the top-level object starts and ends (the text is known to be valid)."""
    decoder = json.JSONDecoder()
    spans: dict[str, tuple[int, int]] = {}
    at = _skip(text, _skip(text, 0) + 1)  # past "{"
    while text[at] != "}":
        key, at = decoder.raw_decode(text, at)
        start = _skip(text, _skip(text, at) + 1)  # past ":"
        _, at = decoder.raw_decode(text, start)
        spans[key] = (start, at)
        at = _skip(text, at)
        if text[at] == ",":
            at = _skip(text, at + 1)
    return spans


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _WHITESPACE:
        at += 1
    return at
