"""Strict reading of the JSON that carries signatures (bundles, envelopes, statements).

Bundles come from whoever sent the model, so the reader leaves nothing to interpretation: UTF-8 only,
no duplicate keys (two parsers could pick different ones), no NaN or Infinity, a size cap, unknown
fields refused, and base64 that re-encodes to exactly the same text. Every failure is a
BundleFormatError naming the field (or the error type the caller names: TEE evidence bundles are read
by the same rules and fail as EvidenceFormatError).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection
from typing import Any

from attest.errors import BundleFormatError, VerificationError
from sbom.errors import MalformedFileError
from sbom.strict_json import load_strict_json

__all__ = ["b64decode_strict", "expect_object", "loads_strict"]


_Error = type[VerificationError]


def loads_strict(raw: bytes, what: str, *, max_bytes: int, error: _Error = BundleFormatError) -> Any:
    """Parse ``raw`` as one JSON document with ``sbom.strict_json``'s rules, failing as ``error``."""
    if len(raw) > max_bytes:
        raise error(f"{what} is larger than {max_bytes} bytes")
    try:
        return load_strict_json(raw.decode("utf-8"), what)
    except UnicodeDecodeError:
        raise error(f"{what} is not UTF-8 text") from None
    except MalformedFileError as exc:
        raise error(exc.reason) from None
    except ValueError as exc:  # json.JSONDecodeError
        raise error(f"{what} is not valid JSON: {exc}") from None


def expect_object(
    data: object, what: str, *, required: Collection[str] = (), optional: Collection[str] = (),
    error: _Error = BundleFormatError,
) -> dict[str, Any]:
    """``data`` as a JSON object with all of ``required``, and nothing outside ``required`` and ``optional``."""
    if not isinstance(data, dict):
        raise error(f"{what} must be a JSON object")
    missing = set(required) - data.keys()
    if missing:
        raise error(f"{what} lacks {', '.join(sorted(missing))}")
    unknown = data.keys() - set(required) - set(optional)
    if unknown:
        raise error(f"{what} has unknown fields: {', '.join(sorted(unknown))}")
    return data


def b64decode_strict(value: object, what: str, *, error: _Error = BundleFormatError) -> bytes:
    """Standard, padded base64 whose re-encoding is the same text; anything else is ``error``."""
    if not isinstance(value, str):
        raise error(f"{what} must be a base64 string, not {type(value).__name__}")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise error(f"{what} is not valid base64") from None
    if base64.b64encode(decoded).decode("ascii") != value:
        raise error(f"{what} is not canonical base64")
    return decoded
