"""Actions that untrusted content asks for, matched against the tool a call invokes.

Values are not the only thing an attacker supplies: "Get all user information", "make a reservation at
the hotel", "delete the file" name an *action*, and the hijacked agent performs it with arguments it looked
up itself. A call's action is its tool's name, as words without the reading verbs and fillers that every
tool shares (``get_user_information`` -> user, information; ``reserve_hotel`` -> reserve, hotel). The
action is *instructed* when a request sentence in untrusted content (a directive of ``directives``, or a
sentence opening with a reading order: "get", "find", "look up", "check" ...) holds every one of those
words and the user's own text does not: the user asked for something else.

Words are compared by a crude stem (``key``): plural and verb endings off, then the first five letters,
so "reservation" meets ``reserve`` and "cities" meets ``city``. A request sentence is bounded to
``MAX_SENTENCE`` characters around its cue, and at most ``MAX_REQUESTS`` are kept per text.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from gateway.detect.directives import Spans
from gateway.detect.sinks import VERB_CATEGORIES, tokens, verb_category

__all__ = ["MAX_REQUESTS", "MAX_SENTENCE", "Action", "Request", "action_of", "categories", "key", "keys", "requests"]

MAX_SENTENCE = 300
MAX_REQUESTS = 64

_FILLERS = frozenset(
    (
        "get",
        "all",
        "by",
        "in",
        "for",
        "the",
        "of",
        "to",
        "a",
        "an",
        "and",
        "with",
        "from",
        "on",
        "at",
        "my",
        "new",
        "list",
        "search",
        "find",
        "read",
        "fetch",
        "check",
        "show",
        "view",
        "retrieve",
        "lookup",
        "query",
        "is",
        "tool",
        "api",
        "v",
        "do",
        "make",
        "info",
        "details",
        "given",
        "current",
    )
)
"""Words of a tool's name that say nothing about which action it is."""
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE_END = re.compile(r"[.!?] ")


@functools.lru_cache(maxsize=16384)
def key(word: str) -> str:
    """A word's comparison stem: "reservations", "reserved" and "reserve" all give "reser"."""
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    else:
        for suffix in ("ing", "ed", "es", "s"):
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                word = word[: -len(suffix)]
                break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word[:5]


_BY_STEM = {key(verb): category for verb, category in VERB_CATEGORIES.items()}


@dataclass(frozen=True, slots=True)
class Action:
    """What a tool's name says it does."""

    category: str | None
    """The category of its leading verb (``sinks.verb_category``: ``reserve`` -> payment); None for a read."""
    stems: frozenset[str]
    """The stems of its words, the verb's included."""
    objects: frozenset[str]
    """The stems of the words after the verb: what it acts on."""

    @property
    def cues(self) -> tuple[str, ...]:
        """Substrings every text that names the action holds (each stem's first letters): a cheap first test."""
        return tuple(stem.rstrip("y")[:3] for stem in self.stems)

    def asked(self, stems: set[str], verbs: set[str]) -> bool:
        """Whether the user's words (their ``stems`` and the categories of their ``verbs``) ask for it: a verb
        of the same kind on one of its objects ("book a hotel" asks for ``reserve_hotel``), or for a read,
        every object ("my user information" asks for ``get_user_information``)."""
        if self.category is None:
            return self.objects <= stems
        return self.category in verbs and (not self.objects or bool(self.objects & stems))


@dataclass(frozen=True, slots=True)
class Request:
    """One request sentence of an untrusted text: where it is (its stems are computed when a call needs them)."""

    start: int
    end: int


def keys(folded: str) -> set[str]:
    """The stems of every word of a folded text."""
    return {key(word) for word in _WORD.findall(folded)}


@functools.lru_cache(maxsize=4096)
def action_of(tool: str) -> Action:
    """What a tool's name says it does; no stems when the name says nothing (``get``, ``run``)."""
    words = [word for word in tokens(tool) if word not in _FILLERS and not word.isdigit()]
    category = verb_category(words[0]) if words else None
    objects = words[1:] if category is not None else words
    return Action(category, frozenset(map(key, words)), frozenset(map(key, objects)))


def categories(folded: str) -> set[str]:
    """The categories of the sink verbs of a folded text, by stem: "a reservation" asks for what "reserve" does."""
    return {c for word in _WORD.findall(folded) if (c := _BY_STEM.get(key(word))) is not None}


def requests(folded: str, directives: Spans, reads: list[int]) -> list[Request]:
    """The request sentences of a folded text: each directive's sentence, and each sentence that orders a read
    (``directives.read_orders``)."""
    starts = [start for start, _ in directives] + reads
    found: list[Request] = []
    reach = -1
    for cue in sorted(starts):
        if cue < reach:
            continue
        before = folded.rfind(". ", max(0, cue - MAX_SENTENCE), cue)
        start = before + 2 if before >= 0 else max(0, cue - MAX_SENTENCE)
        stop = _SENTENCE_END.search(folded, cue, cue + MAX_SENTENCE)
        end = stop.start() + 1 if stop else min(len(folded), cue + MAX_SENTENCE)
        found.append(Request(start, end))
        reach = end
        if len(found) >= MAX_REQUESTS:
            break
    return found
