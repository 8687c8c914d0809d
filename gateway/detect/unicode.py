"""Text a person cannot see but a model reads: tag characters, invisible runs, bidi overrides, mixed scripts.

Models tokenise characters that renderers drop, so an instruction written in Unicode tag characters
(U+E0000-E007F, "ASCII smuggling"), in a run of variation selectors (one byte per selector), or split by
zero-width characters reaches the model while the user reviewing the page sees nothing. ``reveal`` strips
those characters, decodes the smuggled text so it can be scanned like any other, and reports what it removed.
Legitimate uses stay quiet: subdivision flags (a black flag followed by tag letters and a cancel tag), a zero-
width joiner inside an emoji sequence, a single variation selector after an emoji, a zero-width non-joiner in
Persian or Indic words (only invisibles between two Latin letters count as word splitting).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gateway.detect.signal import Signal, excerpt

__all__ = ["Revealed", "reveal"]

_TAG_RUN = re.compile("[\U000e0000-\U000e007f]+")
_FLAG = "\U0001f3f4"
_CANCEL_TAG = "\U000e007f"
_VS_RUN = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]{4,}")
_INVISIBLE = "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u180e\u00ad"
_INVISIBLE_ANY = re.compile(f"[{_INVISIBLE}]")
_INVISIBLE_IN_WORD = re.compile(f"(?<=[A-Za-z])[{_INVISIBLE}]+(?=[A-Za-z])")
_INVISIBLE_RUN = re.compile(f"[{_INVISIBLE}]{{8,}}")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_BIDI_OVERRIDE = re.compile("[\u202d\u202e]")
_MIXED_SCRIPT = re.compile("[A-Za-z][\u0370-\u03ff\u0400-\u04ff]|[\u0370-\u03ff\u0400-\u04ff][A-Za-z]")
_STRIP = re.compile(f"[{_INVISIBLE}\u202a-\u202e\u2066-\u2069\ufe00-\ufe0f\U000e0000-\U000e01ef]+")

MAX_HIDDEN_CHARS = 4096
"""Decoded hidden text kept for rescanning; an attacker gains nothing from more than a page of it."""


@dataclass(frozen=True, slots=True)
class Revealed:
    visible: str
    """The text with invisible, bidi and tag characters removed (what to scan)."""
    hidden: tuple[str, ...] = ()
    """Text decoded from tag characters or variation-selector runs (to scan too)."""
    signals: list[Signal] = field(default_factory=list)


def _is_flag(text: str, start: int, end: int) -> bool:
    return start > 0 and text[start - 1] == _FLAG and text[end - 1] == _CANCEL_TAG and end - start <= 8


def _decode_selectors(run: str) -> str:
    data = bytearray()
    for ch in run:
        code = ord(ch)
        data.append(code - 0xFE00 if code <= 0xFE0F else code - 0xE0100 + 16)
    return data.decode("utf-8", errors="replace")


def _hidden_tags(text: str, signals: list[Signal]) -> list[str]:
    hidden: list[str] = []
    for match in _TAG_RUN.finditer(text):
        if _is_flag(text, match.start(), match.end()):
            continue
        decoded = "".join(chr(ord(ch) - 0xE0000) for ch in match.group()[:MAX_HIDDEN_CHARS])
        printable = "".join(ch for ch in decoded if ch.isprintable())
        if len(printable) >= 3:
            hidden.append(printable)
            signals.append(Signal("hidden_text", 0.9, printable[:80], "Unicode tag characters"))
    return hidden


def _hidden_selectors(text: str, signals: list[Signal]) -> list[str]:
    hidden: list[str] = []
    for match in _VS_RUN.finditer(text):
        decoded = _decode_selectors(match.group()[:MAX_HIDDEN_CHARS])
        printable = "".join(ch for ch in decoded if ch.isprintable())
        if len(printable) >= 3 and len(printable) >= 0.8 * len(decoded):
            hidden.append(printable)
            signals.append(Signal("hidden_text", 0.85, printable[:80], "variation-selector run"))
    return hidden


def reveal(text: str) -> Revealed:
    """Strip what renders invisibly, decode smuggled text, and report each kind found."""
    if text.isascii():
        return Revealed(text)
    signals: list[Signal] = []
    hidden = _hidden_tags(text, signals) + _hidden_selectors(text, signals)
    if match := _INVISIBLE_IN_WORD.search(text):
        splits = len(_INVISIBLE_IN_WORD.findall(text))
        signals.append(
            Signal("invisible_chars", 0.6 if splits >= 3 else 0.3,
                   excerpt(_INVISIBLE_ANY.sub("", text[max(0, match.start() - 40):match.end() + 40]), 0, 80),
                   f"{splits} zero-width splits inside words")
        )
    if run := _INVISIBLE_RUN.search(text):
        signals.append(Signal("invisible_chars", 0.7, f"{len(run.group())} invisible characters in a row"))
    overrides = len(_BIDI_OVERRIDE.findall(text))
    if overrides:
        signals.append(Signal("bidi_override", 0.45, f"{overrides} bidi override characters (U+202D/U+202E)"))
    elif _BIDI.search(text):
        signals.append(Signal("bidi_override", 0.15, "bidi embedding or isolate characters"))
    if match := _MIXED_SCRIPT.search(text):
        mixes = len(_MIXED_SCRIPT.findall(text))
        signals.append(Signal("homoglyph", 0.6 if mixes >= 3 else 0.35, excerpt(text, match.start(), match.end()),
                              f"{mixes} Latin/Greek/Cyrillic mixes inside words"))
    visible = _STRIP.sub("", text)
    return Revealed(visible, tuple(hidden), signals)
