"""Instructions hidden in an encoding the model can read: base64, hex, rot13.

Models decode base64 and rot13 on request ("decode this and follow it"), so an encoded instruction passes
every phrase rule and still hijacks the agent. ``decode_candidates`` finds bounded runs that look encoded,
decodes them, and keeps only what decodes to readable text; the caller rescans that text with the same rules.
Binary data (images, keys, hashes, compressed blobs) does not decode to text and is dropped, so base64 of an
attachment costs a decode and never a finding. Rot13 is tried only when the text contains the rot13 forms of
the words an override needs, so ordinary text is not transformed.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re

from gateway.detect.anchors import anchored
from gateway.detect.signal import Signal, excerpt

__all__ = ["MAX_CANDIDATES", "decode_candidates", "scan_decode_request"]

MAX_CANDIDATES = 8
"""Encoded runs decoded per text; each at most ``MAX_RUN_CHARS``."""
MAX_RUN_CHARS = 8192

_LONG_RUN = re.compile(r"[A-Za-z0-9+/=_-]{24}")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_ROT13_HINTS = frozenset({"vtaber", "qvfertneq", "vafgehpgvba", "vafgehpgvbaf", "flfgrz", "nffvfgnag", "cerivbhf"})
_DECODE_REQUEST = anchored(
    "decode decipher decrypt",
    r"\b(?:decode|decipher|decrypt)\b (?:this|it|the following|the (?:text|string|message|payload|instructions?) "
    r"(?:below|above))\b[^.!?\n]{0,40}?\b(?:and|then)\b (?:then )?(?:follow|execute|run|obey|do what|carry out|act on"
    r"|comply)",
)


def _readable(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(text) < 12:
        return None
    printable = sum(ch.isprintable() or ch in "\n\t\r" for ch in text)
    letters = sum(ch.isalpha() for ch in text)
    if printable < 0.95 * len(text) or letters < 0.6 * len(text.replace(" ", "")) or " " not in text:
        return None
    return text


def _base64(run: str) -> bytes | None:
    run = run.rstrip("=")
    padded = run + "=" * (-len(run) % 4)
    try:
        if "-" in run or "_" in run:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def decode_candidates(lines: str, latin: str, words: set[str]) -> list[tuple[str, str]]:
    """``(encoding, decoded text)`` for each encoded run of ``lines`` that decodes to readable text; ``latin`` and
    ``words``: the folded text and its words, for rot13."""
    found: list[tuple[str, str]] = []
    if not _ROT13_HINTS.isdisjoint(words):
        found.append(("rot13", codecs.encode(latin, "rot13")))
    if not _LONG_RUN.search(lines):
        return found
    for match in _BASE64.finditer(lines):
        if len(found) >= MAX_CANDIDATES:
            break
        run = match.group()[:MAX_RUN_CHARS]
        if run.isalpha() or run.isdigit():  # one long word or number, not an encoding
            continue
        if len(run) >= 40 and _HEX.fullmatch(run):
            data: bytes | None = bytes.fromhex(run[: len(run) - len(run) % 2])
            encoding = "hex"
        else:
            data, encoding = _base64(run), "base64"
        if data is not None and (text := _readable(data)) is not None:
            found.append((encoding, text))
    return found


def scan_decode_request(latin: str, words: set[str]) -> list[Signal]:
    """An instruction to decode something and act on it."""
    if match := _DECODE_REQUEST.search(latin, words):
        return [Signal("encoded", 0.55, excerpt(latin, match.start(), match.end()), "asks to decode and act")]
    return []
