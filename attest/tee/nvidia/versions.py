"""Driver and VBIOS version numbers, compared component by component as numbers, never as text.

Text comparison gets versions wrong ("550.100" < "550.90"). A driver version is dotted decimal
(``550.90.07``); a VBIOS version is dotted hex bytes (``96.00.9F.00.01``), so ``9F`` is 159, not text.
"""

from __future__ import annotations

import string
from typing import Literal

__all__ = ["Component", "parse_version"]

Component = Literal["driver", "vbios"]

_MAX_PARTS = 8
_DIGITS: dict[Component, tuple[frozenset[str], int]] = {
    "driver": (frozenset(string.digits), 10),
    "vbios": (frozenset(string.hexdigits), 16),
}


def parse_version(text: str, component: Component) -> tuple[int, ...]:
    """The numeric components of ``text``; ValueError saying why it is not a version of ``component``."""
    allowed, base = _DIGITS[component]
    parts = text.strip().split(".")
    if not 1 <= len(parts) <= _MAX_PARTS or not all(0 < len(p) <= 8 and set(p) <= allowed for p in parts):
        kind = "dotted decimal" if base == 10 else "dotted hex"
        raise ValueError(f"{text!r} is not a {kind} {component} version")
    return tuple(int(p, base) for p in parts)
