"""JSON that every reader of it understands the same way.

Model metadata and signed documents are read by more than one parser (ours, transformers, llama.cpp,
sigstore). Where lenient parsers disagree (duplicate keys, NaN and Infinity, numbers that overflow)
this reader refuses instead of choosing.
"""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn

from sbom.errors import MalformedFileError

__all__ = ["load_strict_json"]


def load_strict_json(text: str, name: str) -> Any:
    """``json.loads`` that refuses what lenient parsers disagree on.

    Duplicate keys (one reader keeps the first, another the last), NaN, Infinity and numbers that
    overflow to them raise MalformedFileError. Text that is not JSON at all raises
    ``json.JSONDecodeError``, so that callers can decide whether that is an error.
    """

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(items)
        if len(obj) != len(items):
            seen: set[str] = set()
            for key, _ in items:
                if key in seen:
                    raise MalformedFileError(name, f"duplicate JSON key {key!r}")
                seen.add(key)
        return obj

    def constant(word: str) -> NoReturn:
        raise MalformedFileError(name, f"JSON value {word} is not allowed")

    def finite(literal: str) -> float:
        value = float(literal)
        if not math.isfinite(value):
            raise MalformedFileError(name, f"JSON number {literal[:40]} overflows to infinity")
        return value

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant, parse_float=finite)
    except RecursionError:
        raise MalformedFileError(name, "JSON nested too deeply") from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # e.g. an integer literal beyond Python's digit limit
        raise MalformedFileError(name, f"invalid JSON number: {exc}") from None
