"""Canonical JSON and the hash that chains audit records.

A record's hash must be recomputable by anyone holding the row, in any language, so the bytes that are
hashed are defined here once:

* canonical JSON is UTF-8 JSON with object keys sorted, no whitespace (``,`` and ``:`` separators),
  non-ASCII characters written as themselves and ``"``, ``\\`` and control characters escaped as
  RFC 8785 does (``\\n``, ``\\u001f``); NaN, Infinity and strings with lone surrogates are refused;
* a record's hash is the lowercase hex SHA-256 of the canonical JSON of ``{"v": 1, "instance", "seq",
  "kind", "at", "request_id", "session", "prev", "data"}``, where ``at`` is
  ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC, microseconds), ``prev`` the previous record's hash (64 zeros
  for the first record of a chain), and ``data`` is the row's ``data`` column spliced in exactly as
  stored. Every other field is a string, an integer or null, whose canonical form is the same in every
  language, and a verifier never re-serialises ``data``: it hashes the stored text.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

__all__ = ["GENESIS", "canonical_dumps", "format_time", "record_hash"]

GENESIS = "0" * 64
"""The ``prev`` of the first record of every chain."""

_FORMAT_VERSION = 1


def canonical_dumps(value: Any) -> str:
    """``value`` as canonical JSON text; ValueError for what has no canonical form."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text holds a lone surrogate, which UTF-8 cannot carry") from None
    return text


def format_time(at: datetime) -> str:
    """``at`` in UTC as ``2025-01-31T12:00:00.000000Z``; a naive datetime is refused (its zone is unknown)."""
    if at.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00" off; twice strftime's speed


def record_hash(
    *, instance: str, seq: int, kind: str, at: datetime, request_id: str | None, session: str | None,
    prev: str, data_text: str,
) -> str:
    """The chain hash of one record, its content given as the canonical text stored in the row."""
    header = canonical_dumps({
        "v": _FORMAT_VERSION, "instance": instance, "seq": seq, "kind": kind, "at": format_time(at),
        "request_id": request_id, "session": session, "prev": prev, "data": None,
    })
    # The same bytes as canonical_dumps of the whole object: "data" is spliced in where its null stood.
    head, tail = header.split('"data":null', 1)
    return hashlib.sha256(f'{head}"data":{data_text}{tail}'.encode()).hexdigest()
