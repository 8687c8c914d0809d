"""The one glob dialect of policy documents: ``*`` (any run of characters, dots included) and ``?`` (one).

Nothing else is special, so a model name like ``org/model[q4]`` means itself. fnmatch is not used: its
``[...]`` classes and platform-dependent case folding would make the same policy mean different things,
and a regex translation backtracks polynomially on hostile input. The matcher below is the greedy
wildcard walk: O(len(pattern) x len(value)) at worst, and values longer than 4,096 characters never
match (no legitimate model, tool or host name is that long, and refusing them keeps the walk bounded).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

__all__ = ["MAX_MATCHED", "Glob", "glob_matches", "is_glob"]

_MAX_GLOB = 256
MAX_MATCHED = 4096


def _check_glob(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    if len(value) > _MAX_GLOB:
        raise ValueError(f"must be at most {_MAX_GLOB} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ValueError(f"{value!r} contains whitespace or control characters")
    return value


Glob = Annotated[str, AfterValidator(_check_glob)]
"""A name or a glob over names (``*`` and ``?``), as written in a policy."""


def is_glob(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def glob_matches(pattern: str, value: str) -> bool:
    """Whether ``value`` as a whole matches ``pattern`` (case-sensitive)."""
    if len(value) > MAX_MATCHED:
        return False
    p = v = 0
    star, resume = -1, 0  # the last '*' seen, and where in value its current expansion ends
    while v < len(value):
        if p < len(pattern) and pattern[p] == "*":
            star, resume, p = p, v, p + 1
        elif p < len(pattern) and pattern[p] in ("?", value[v]):
            p, v = p + 1, v + 1
        elif star >= 0:
            resume += 1
            p, v = star + 1, resume
        else:
            return False
    return pattern[p:].strip("*") == ""
