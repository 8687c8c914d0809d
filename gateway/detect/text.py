"""Text as the model will read it: bounded, unescaped, invisible characters removed, look-alikes folded.

Rules are written once, against plain lower-case Latin text; every spelling trick that a model sees through but
a regular expression would not is undone here first: JSON/YAML escapes of an embedded document (``\\n``,
``\\u0069``, folded lines), HTML entities, compatibility forms (full-width, mathematical bold, ligatures: NFKC)
and Greek/Cyrillic look-alikes inside Latin words (a small confusables map, applied after NFKC to text that
mixes scripts inside a word, so Russian or Greek prose keeps its letters).

Scanning is bounded: at most ``MAX_SCAN_CHARS`` of a text are read, three quarters from its start and one
quarter from its end (injections sit at the start or the end of what they poison far more often than in the
middle; text beyond the bound is reported as truncated, not ignored silently).
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field

from gateway.detect.anchors import words_of
from gateway.detect.signal import Signal
from gateway.detect.unicode import reveal

__all__ = ["MAX_SCAN_CHARS", "Prepared", "bound", "prepare"]

MAX_SCAN_CHARS = 16_384
"""Characters of one text that are scanned (head 3/4, tail 1/4); ``scripts/eval_injection.py --latency`` times it."""

_YAML_FOLD = re.compile(r"\\\r?\n[ \t]*\\?")
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SIMPLE = (("\\n", "\n"), ("\\r", " "), ("\\t", " "), ('\\"', '"'), ("\\'", "'"), ("\\/", "/"))

# Greek and Cyrillic letters that render like Latin ones (after NFKC), from Unicode's confusables list.
_CONFUSABLES = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
        "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "һ": "h", "ԛ": "q",
        "ԝ": "w", "ү": "y", "ɡ": "g", "ı": "i", "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k",
        "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ѡ": "w", "ɑ": "a", "ɩ": "i",
    }
)


@dataclass(frozen=True, slots=True)
class Prepared:
    latin: str
    """Lower case, whitespace collapsed, look-alikes folded to Latin: what the English rules read."""
    native: str
    """Lower case, whitespace collapsed, scripts untouched: what the other-language rules read."""
    lines: str
    """Unescaped and NFKC but with case and line breaks kept: for line-anchored markers (``SYSTEM:``)."""
    words: set[str] = field(default_factory=set)
    """The words of ``latin``, for the rules' anchors."""
    hidden: tuple[str, ...] = ()
    signals: list[Signal] = field(default_factory=list)
    truncated: bool = False
    lowered: str = ""
    """``lines`` lower-cased: what the sentence model and the line-anchored rules read."""


def bound(text: str, limit: int = MAX_SCAN_CHARS) -> tuple[str, bool]:
    """The part of ``text`` that is scanned, and whether anything was left out."""
    if len(text) <= limit:
        return text, False
    head = limit * 3 // 4
    return text[:head] + "\n" + text[len(text) - (limit - head):], True


def _unescape(text: str) -> str:
    if "\\" in text:
        text = _YAML_FOLD.sub("", text)
        for escape, plain in _SIMPLE:
            text = text.replace(escape, plain)
        if "\\u" in text:
            text = _UNICODE_ESCAPE.sub(lambda m: chr(int(m[1], 16)), text)
            if _SURROGATE.search(text):  # JSON spells astral characters (tag characters too) as pairs
                text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if "&" in text:
        text = html.unescape(text)
    return text


def prepare(text: str, limit: int = MAX_SCAN_CHARS) -> Prepared:
    """Bound, unescape, reveal and normalise ``text`` for the rules (escapes first: ``\\u200b`` is invisible too)."""
    bounded, truncated = bound(text, limit)
    revealed = reveal(_unescape(bounded))
    lines = revealed.visible
    if not lines.isascii():
        lines = unicodedata.normalize("NFKC", lines)
    native = " ".join(lines.split()).lower()
    mixed = any(signal.rule == "homoglyph" for signal in revealed.signals)
    latin = native.translate(_CONFUSABLES) if mixed else native
    return Prepared(latin, native, lines, words_of(latin), revealed.hidden, revealed.signals, truncated, lines.lower())
