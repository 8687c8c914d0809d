"""Regular expressions that run only around their anchor words: what keeps a scan in microseconds.

Python's ``re`` tries an alternation like ``\\b(?:ignore|disregard|...)`` at every position, about 20 ns a
character: forty rules over a 30 KB page would take 25 ms. Every rule here names its anchors, words of which
any match must contain (``ignore`` ...), found with ``str.find``. A rule whose matches start with an anchor
(``lead``) is tried only at those positions; any other runs in windows around them. Text that holds none of a
rule's anchors (most text, for most rules) costs a set lookup.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

__all__ = ["Anchored", "anchored", "words_of"]

BACK = 160
"""Characters before an anchor that a match may start at."""
AHEAD = 240
"""Characters after an anchor that a match may end at."""
MAX_WINDOWS = 24
"""Past this many anchor occurrences the whole text is searched at once."""
MAX_LEADS = 512
"""The same for a ``lead`` rule, whose tries cost a fraction of a microsecond each."""

_PUNCT = bytes.maketrans(
    "".join(ch for ch in string.punctuation if ch not in "'-").encode(),
    b" " * (len(string.punctuation) - 2),
)


def words_of(text: str) -> set[str]:
    """The words of ``text`` (ASCII punctuation other than ``'`` and ``-`` splits words); bytes.translate is
    fifty times faster than str.translate with a mapping."""
    data = text.encode("utf-8", "surrogatepass").translate(_PUNCT)
    return set(data.decode("utf-8", "surrogatepass").split())


@dataclass(frozen=True, slots=True)
class Anchored:
    words: frozenset[str]
    """Whole-word anchors, looked up in the text's word set."""
    stems: tuple[str, ...]
    """Substring anchors (stems, symbols), looked up with ``in``."""
    pattern: re.Pattern[str]
    lead: bool = True
    """Every match starts at an anchor: try ``match`` there instead of searching a window."""

    def search(self, text: str, words: set[str], find_in: str | None = None) -> re.Match[str] | None:
        """The first match near an anchor. ``find_in``: where to look for anchors (same offsets as ``text``)."""
        haystack = find_in if find_in is not None and len(find_in) == len(text) else text
        present = [*self.words.intersection(words), *(s for s in self.stems if s in haystack)]
        if not present:
            return None
        starts: list[int] = []
        limit = MAX_LEADS if self.lead else MAX_WINDOWS
        for anchor in present:
            whole = anchor in self.words
            at = haystack.find(anchor)
            while at >= 0 and len(starts) <= limit:
                end = at + len(anchor)
                inside = at and haystack[at - 1].isalnum() or end < len(haystack) and haystack[end].isalnum()
                if not (whole and inside):
                    starts.append(at)
                at = haystack.find(anchor, end)
        if not starts:  # a word of the folded text that this spelling of it lacks
            return None
        if self.lead and len(starts) <= limit:
            for at in sorted(starts):
                if match := self.pattern.match(text, at):
                    return match
            return None
        if len(starts) > MAX_WINDOWS or len(starts) * (BACK + AHEAD) >= len(text):
            return self.pattern.search(text)
        starts.sort()
        lo, hi = max(0, starts[0] - BACK), starts[0] + AHEAD
        for at in starts[1:]:
            if at - BACK <= hi:
                hi = at + AHEAD
                continue
            if match := self.pattern.search(text, lo, hi):
                return match
            lo, hi = max(0, at - BACK), at + AHEAD
        return self.pattern.search(text, lo, hi)


_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
"""A word as ``words_of`` keeps it (``don't``, ``e-mail``, ``answer's``): looked up in the word set."""


def anchored(anchors: str, pattern: str, flags: int = 0, *, lead: bool = True) -> Anchored:
    """``anchors``: space-separated; a plain word (lower-case letters and digits, inner ``'`` or ``-``) is matched
    as a word, anything else (``jailbr*``, ``<|``) as a substring (a trailing ``*`` only documents a stem).
    ``lead``: every match begins with an anchor."""
    items = anchors.split()
    words = frozenset(a for a in items if _WORD.fullmatch(a))
    stems = tuple(a.rstrip("*") for a in items if a not in words)
    return Anchored(words, stems, re.compile(pattern, flags), lead)
