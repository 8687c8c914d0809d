"""Strict, bounded JSON: the one parser every protocol shares, so the gateway never reads a body two ways.

A body that two JSON parsers could read differently is a smuggling gap: the gateway would check one
reading while the upstream acts on another. So this refuses what parsers disagree on or what cannot be
stored in the audit log, rather than guessing:

- duplicate object keys (which copy wins differs between parsers);
- NaN, Infinity and numbers that overflow to infinity (not JSON; Python's ``json`` accepts them);
- anything but UTF-8 without a BOM (``json.loads(bytes)`` silently accepts UTF-16 and UTF-32, and the
  MCP SDK's server parses bodies with it);
- escapes of lone surrogates (``"\\ud800"``: valid JSON syntax, but no UTF-8 text can hold it);
- nesting deeper than ``max_depth``, and integers longer than Python's digit limit.

Depth is measured after the C parser has accepted the text (which raises ``RecursionError`` long before
the stack is at risk), so the scan below only ever sees valid JSON and runs in linear time.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from gateway.errors import ProtocolError

__all__ = ["decode_utf8", "dumps", "loads"]

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_PARENS = str.maketrans("[{]}", "(())")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def decode_utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"not UTF-8: invalid byte at offset {exc.start}") from None


def loads(text: str | bytes, *, max_depth: int = 64) -> Any:
    """Parse ``text`` strictly (see the module docstring); raises ``ProtocolError`` with the reason."""
    if isinstance(text, bytes):
        text = decode_utf8(text)
    try:
        if text.startswith("\ufeff"):  # as json.loads says it; the decoder alone would not say why
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ProtocolError(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # from the hooks, or an integer beyond sys.get_int_max_str_digits()
        raise ProtocolError(f"invalid JSON: {exc}") from None
    # Nesting cannot exceed the number of opening brackets: most bodies have too few to need the scan.
    if text.count("[") + text.count("{") > max_depth and _depth(text, max_depth) > max_depth:
        raise ProtocolError(f"JSON nested deeper than {max_depth} levels")
    if _SURROGATE_ESCAPE.search(text):
        try:
            dumps(value).encode("utf-8")
        except UnicodeEncodeError:
            raise ProtocolError("invalid JSON: a \\u escape encodes a lone surrogate") from None
    return value


def dumps(value: Any) -> str:
    """Compact JSON text, as the audit log stores arguments that arrived already parsed."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _depth(text: str, limit: int) -> int:
    """How deeply ``text`` (valid JSON) nests, counted up to ``limit + 1``, in C-speed string passes."""
    nesting = _NOT_BRACKET.sub("", _STRING.sub("", text)).translate(_PARENS)
    depth = 0
    while nesting and depth <= limit:
        nesting = nesting.replace("()", "")  # each pass removes every innermost pair: one level
        depth += 1
    return depth


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return obj


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise ValueError(f"number {literal[:40]} overflows to infinity")
    return number


_DECODER = json.JSONDecoder(object_pairs_hook=_unique, parse_constant=_constant, parse_float=_finite)
"""One decoder for every body: ``json.loads`` with hooks builds a new one each call."""
