"""Strict reading of the JSON that carries signatures (bundles, envelopes, statements).

Bundles come from whoever sent the model, so the reader leaves nothing to interpretation: UTF-8 only,
no duplicate keys (two parsers could pick different ones), no NaN or Infinity, a size cap, unknown
fields refused, and base64 that re-encodes to exactly the same text. Every failure is a
BundleFormatError naming the field.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection
from typing import Any

from attest.errors import BundleFormatError
from sbom.errors import MalformedFileError
from sbom.strict_json import load_strict_json

__all__ = ["b64decode_strict", "expect_object", "loads_strict"]


def loads_strict(raw: bytes, what: str, *, max_bytes: int) -> Any:
    """Parse ``raw`` as one JSON document with ``sbom.strict_json``'s rules, failing as a BundleFormatError."""
    if len(raw) > max_bytes:
        raise BundleFormatError(f"{what} is larger than {max_bytes} bytes")
    try:
        return load_strict_json(raw.decode("utf-8"), what)
    except UnicodeDecodeError:
        raise BundleFormatError(f"{what} is not UTF-8 text") from None
    except MalformedFileError as exc:
        raise BundleFormatError(exc.reason) from None
    except ValueError as exc:  # json.JSONDecodeError
        raise BundleFormatError(f"{what} is not valid JSON: {exc}") from None


def expect_object(
    data: object, what: str, *, required: Collection[str] = (), optional: Collection[str] = ()
) -> dict[str, Any]:
    """``data`` as a JSON object with all of ``required``, and nothing outside ``required`` and ``optional``."""
    if not isinstance(data, dict):
        raise BundleFormatError(f"{what} must be a JSON object")
    missing = set(required) - data.keys()
    if missing:
        raise BundleFormatError(f"{what} lacks {', '.join(sorted(missing))}")
    unknown = data.keys() - set(required) - set(optional)
    if unknown:
        raise BundleFormatError(f"{what} has unknown fields: {', '.join(sorted(unknown))}")
    return data


def b64decode_strict(value: object, what: str) -> bytes:
    """Standard, padded base64 whose re-encoding is the same text; anything else is a BundleFormatError."""
    if not isinstance(value, str):
        raise BundleFormatError(f"{what} must be a base64 string, not {type(value).__name__}")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BundleFormatError(f"{what} is not valid base64") from None
    if base64.b64encode(decoded).decode("ascii") != value:
        raise BundleFormatError(f"{what} is not canonical base64")
    return decoded
