"""Evidence marked where it occurs in a stored body, so a reviewer sees what a detector saw, in place.

Findings quote their evidence as short excerpts, sometimes decorated: quoted (“…”, '…'), cut with an
ellipsis, case-folded, or as a Python repr. Each piece is undecorated, then looked for without regard
to case, as written and as it appears inside a JSON string; every match becomes a ``<mark>`` naming
the finding. Everything else is escaped: the body is untrusted text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

from markupsafe import Markup, escape

__all__ = ["MIN_NEEDLE", "highlight", "needles"]

MIN_NEEDLE = 4
"""Shorter evidence ("ls", "a") would mark half the body."""
_MAX_MATCHES = 200
_DECOR = "“”\"'`‘’ …."
_REPR = re.compile(r"""^[a-z ]*?:?\s*(['"])(.*)\1$""", re.S)


def needles(evidence: str) -> list[str]:
    """The strings to look for in a body for one piece of evidence (longest first)."""
    text = evidence.strip()
    candidates = {text, text.strip(_DECOR).removesuffix("...").strip(_DECOR)}
    if (match := _REPR.match(text)) is not None:
        candidates.add(match[2])
    for found in list(candidates):
        encoded = json.dumps(found, ensure_ascii=False)[1:-1]
        if encoded != found:
            candidates.add(encoded)
    return sorted((c for c in candidates if len(c) >= MIN_NEEDLE), key=len, reverse=True)


def highlight(text: str, evidence: Sequence[tuple[int, Iterable[str]]]) -> Markup:
    """``text`` escaped, with each match of a finding's evidence wrapped in ``<mark data-finding=N>``.

    ``evidence`` is (finding number, its evidence strings). Of overlapping matches the one that starts
    first (the longer of two that start together) is marked; at most ``_MAX_MATCHES`` marks are placed.
    """
    spans: list[tuple[int, int, int]] = []
    for number, pieces in evidence:
        for piece in pieces:
            for needle in needles(piece):
                for match in re.finditer(re.escape(needle), text, re.IGNORECASE):
                    spans.append((match.start(), match.end(), number))
                    if len(spans) > 4 * _MAX_MATCHES:
                        break
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    out: list[str] = []
    at = placed = 0
    for start, end, number in spans:
        if start < at or placed >= _MAX_MATCHES:
            continue
        out += [escape(text[at:start]), f'<mark class="ev" data-finding="{number}" title="finding {number}">',
                escape(text[start:end]), "</mark>"]
        at, placed = end, placed + 1
    out.append(escape(text[at:]))
    return Markup("".join(out))
