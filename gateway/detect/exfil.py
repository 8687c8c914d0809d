"""Markdown and HTML images whose URL carries data out: the zero-click exfiltration channel of chat UIs.

A chat client renders ``![x](https://host/p?q=...)`` by fetching the URL, so an injected instruction that makes
the model emit such an image with the conversation's secrets in the query leaks them without a click. The
tell is the URL, not the image: a template the model is meant to fill (``{data}``, ``[SECRET]``, ``<chat
history>``, ``$TOKEN``), or query values longer than any ordinary image parameter (``?w=800&fit=crop`` is
short; a leaked summary is not). Signed-URL parameters (S3, Azure SAS, CloudFront) are long by design and are
not counted, nor are values that are themselves a URL or a ``data:`` image (badges carry both). Links (no
``!``) need a click and HTML images in a fetched page are the page's own, so both weigh less; an instruction
to append data to a URL is its own signal.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from gateway.detect.anchors import anchored
from gateway.detect.signal import Signal, excerpt

__all__ = ["scan_exfil"]

_IMAGE = re.compile(r"!\[[^\]\n]{0,300}\]\(\s*<?(https?://[^\s)>]{1,4096})")
_LINK = re.compile(r"(?<!!)\[[^\]\n]{0,300}\]\(\s*<?(https?://[^\s)>]{1,4096})")
_HTML_IMG = re.compile(r"<img\b[^<>]{0,300}?\bsrc\s*=\s*[\"']?(https?://[^\"'\s>]{1,4096})", re.IGNORECASE)
_PLACEHOLDER = re.compile(
    r"\{[^}]{1,60}\}|%7B[^%]{1,60}%7D|\[[A-Za-z_ -]{2,40}\]|%5B[A-Za-z_-]{2,40}%5D|<[A-Za-z_ -]{2,40}>"
    r"|%3C[A-Za-z_-]{2,40}%3E|\$\{?[A-Z_]{3,}|\b(?:INSERT|PLACEHOLDER|YOUR_\w+|REPLACE\w*|APPEND\w*)\b",
)
_SIGNED = re.compile(r"^(?:x-amz-.*|signature|sig|se|sp|sv|sr|st|skoid|sktid|ske|sks|skv|key-pair-id|policy|expires"
                     r"|x-goog-.*|googleaccessid|token|_token)$", re.IGNORECASE)
_DATAISH = re.compile(r"(?=[^/]*\d)(?=[^/]*[A-Za-z])[A-Za-z0-9+=_]{48,}")
_OWN_DATA = ("data:", "http:", "https:", "http%3a", "https%3a")
"""Values that are the page's own: an inline image, a URL (a badge pointing at its JSON endpoint)."""
_INSTRUCTION = anchored(
    "url link image query parameter",
    r"\b(?:append|add|include|put|insert|encode|embed|attach)\b[^.!?\n]{0,80}?\b(?:to|in|into|as)\b (?:the |a |this )?"
    r"(?:url|link|image (?:url|link|source)|query(?: string)?|parameter)\b|\b(?:render|display|show|output|include)\b"
    r"[^.!?\n]{0,30}?\b(?:this|the following|an?) (?:markdown )?image\b",
    re.IGNORECASE,
    lead=False,
)


def _url_weight(url: str) -> tuple[float, str]:
    """How strongly the URL looks like a data carrier, and why."""
    try:
        parts = urlsplit(url)
        params = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return 0.0, ""
    carrier = parts.path + "?" + parts.query + "#" + parts.fragment
    if _PLACEHOLDER.search(carrier) and (parts.query or parts.fragment or len(parts.path) > 1):
        return 0.85, "a placeholder for data in the URL"
    long_values = [
        v for k, v in params if not _SIGNED.match(k) and len(v) >= 48 and not v.lower().startswith(_OWN_DATA)
    ]
    if long_values:
        return 0.6, f"query value of {max(len(v) for v in long_values)} characters"
    segments = [s for s in parts.path.split("/") if _DATAISH.fullmatch(s)]
    if segments and not params:
        return 0.45, f"path segment of {max(len(s) for s in segments)} data-like characters"
    return 0.0, ""


def scan_exfil(text: str, words: set[str], *, link_weight: float = 0.6) -> list[Signal]:
    """Images (and, weighted by ``link_weight``, links) whose URL would carry data to its host; ``words``: the
    text's words (``anchors.words_of``)."""
    signals: list[Signal] = []
    markdown, html = "](" in text, "src" in words and "img" in words
    for pattern, factor in ((_IMAGE, 1.0 if markdown else 0.0), (_HTML_IMG, link_weight if html else 0.0),
                            (_LINK, link_weight if markdown else 0.0)):
        if not factor:
            continue
        for count, match in enumerate(pattern.finditer(text)):
            if count >= 32:
                break
            weight, why = _url_weight(match.group(1))
            if weight:
                signals.append(Signal("exfil_url", weight * factor, excerpt(text, match.start(), match.end(), 0), why))
                break
    if match := _INSTRUCTION.search(text, words, text.lower()):
        signals.append(Signal("exfil_url", 0.45, excerpt(text, match.start(), match.end()), "asks for data in a URL"))
    return signals
