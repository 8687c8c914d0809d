"""Canonical JSON and the hash that chains audit records.

A record's hash must be recomputable by anyone holding the row, in any language, so the bytes that are
hashed are defined here once:

* JSON with object keys sorted (by code point; every key we write is ASCII, where that equals RFC 8785's
  UTF-16 order), no whitespace (``,`` and ``:`` separators), UTF-8, non-ASCII characters written as
  themselves, ``"``, ``\\`` and control characters escaped as RFC 8785 does (``\\n``, ``\\u001f``);
* integers as decimal, and integral floats as integers (``1.0`` is ``1``); other floats in shortest
  round-trip form (``0.25``) and only within 1e-4..1e16 in magnitude, where that form is RFC 8785's
  (scores are rounded to 4 places to stay inside it); NaN, Infinity and strings with lone surrogates
  are refused rather than written in some ad-hoc way;
* a record's hash is ``sha256(canonical({"v": 1, "instance", "seq", "kind", "at", "request_id",
  "session", "prev", "data"}))`` in lowercase hex, where ``at`` is ``YYYY-MM-DDTHH:MM:SS.ffffffZ``
  (UTC, microseconds), ``prev`` the previous record's hash (64 zeros for the first record of a chain)
  and ``data`` the record's content: the same object whose canonical text the ``data`` column holds.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Any

__all__ = ["GENESIS", "canonical_dumps", "format_time", "parse_time", "record_hash"]

GENESIS = "0" * 64
"""The ``prev`` of the first record of every chain."""

_FORMAT_VERSION = 1


def canonical_dumps(value: Any) -> str:
    """``value`` as canonical JSON text; ValueError for what has no canonical form."""
    return json.dumps(_normalise(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _normalise(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no JSON form")
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
        if not 1e-4 <= abs(value) < 1e16:
            raise ValueError(f"float {value!r} has no canonical form here; round or scale it")
        return value
    if isinstance(value, str):
        _check_text(value)
        return value
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise ValueError(f"object keys must be strings, not {type(key).__name__}")
            _check_text(key)
        return {key: _normalise(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(item) for item in value]
    raise ValueError(f"{type(value).__name__} is not a JSON value")


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text holds a lone surrogate, which UTF-8 cannot carry") from None


def format_time(at: datetime) -> str:
    """``at`` in UTC as ``2025-01-31T12:00:00.000000Z``; a naive datetime is refused (its zone is unknown)."""
    if at.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """The inverse of ``format_time``."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


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
