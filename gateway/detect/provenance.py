"""Where the values an agent acts on came from, for one session: the user, untrusted content, or neither.

Trusted text is what the user and the deployment wrote: user messages and the system prompt. Untrusted
text is everything the agent read: tool results, MCP results, fetched pages. A value is *tainted* when
it appeared in untrusted text and never in trusted text (the user naming a recipient makes it theirs,
even after a tool result mentioned it first); it is *instructed* when one of its appearances sits in a
directive sentence (``directives``). Values the agent made up itself, or that no content mentioned, have
no origin: they are not tainted. Actions are followed the same way (``actions``): what the user's words ask
for, against what request sentences in untrusted text ask for. Text the user delegated to by name
(``delegation``: "do the tasks in the email from 'boss@corp.example'") has its instructions adopted: its
values are tainted at most, never instructed.

Each text is remembered once (by its hash): chat requests resend the whole conversation, and only new
content is scanned. Memory is bounded per session: ``MAX_UNTRUSTED_CHARS`` of folded untrusted text
(oldest first out), ``MAX_TRUSTED_CHARS`` of trusted text, ``MAX_ORIGINS`` values and ``MAX_DELEGATIONS``
delegations (the newest kept).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from gateway.detect.actions import Action, Request, categories, keys, requests
from gateway.detect.delegation import delegations
from gateway.detect.directives import Spans, directive_spans, marks, read_orders
from gateway.detect.values import Kind, Value, extract, fold

__all__ = [
    "MAX_DELEGATIONS", "MAX_ORIGINS", "MAX_TRUSTED_CHARS", "MAX_UNTRUSTED_CHARS", "Mention",
    "Origin", "Provenance", "find_word",
]

MAX_UNTRUSTED_CHARS = 128 * 1024
MAX_TRUSTED_CHARS = 64 * 1024
MAX_ORIGINS = 4096
MAX_DELEGATIONS = 32
_MAX_SEEN = 4096
_EXCERPT = 160
_FOLLOWING = 400


@dataclass(frozen=True, slots=True)
class Origin:
    """The untrusted text a value first came from."""

    kind: Kind
    value: str
    source: str
    """What supplied it: ``tool result of search_emails``, ``MCP result of files.example/read``..."""
    instructed: bool
    excerpt: str
    """The directive sentence it sat in, or the text around it."""


@dataclass(frozen=True, slots=True)
class Mention:
    """Untrusted text naming a tool."""

    source: str
    excerpt: str
    directive: bool
    """The name sits in a directive sentence ("use the tool `send_email` ...")."""
    following: str
    """The text after the name (``_FOLLOWING`` characters): where an attacker spells out the arguments."""


@dataclass(slots=True)
class _Chunk:
    source: str
    text: str
    spans: Spans
    reads: list[int]
    """Where sentences open with an order to read (``directives.read_orders``)."""
    found: list[tuple[Request, frozenset[str]]] | None = None

    def requests(self) -> list[tuple[Request, frozenset[str]]]:
        """Its request sentences with the stems of their words, found on the first call that needs them (most
        texts are never asked: an action the user asked for, or one the text does not name, looks no further)."""
        if self.found is None:
            self.found = [(r, frozenset(keys(self.text[r.start : r.end])))
                          for r in requests(self.text, self.spans, self.reads)]
        return self.found


@dataclass(slots=True)
class Provenance:
    """One session's record of trusted and untrusted text and of the values each supplied."""

    trusted_values: set[str] = field(default_factory=set)
    asked: set[str] = field(default_factory=set)
    """Stems of the words the user wrote (``actions.keys``): what they asked about."""
    asked_verbs: set[str] = field(default_factory=set)
    """Categories of the verbs the user wrote (``actions.categories``): what they asked to be done."""
    delegated: list[tuple[str, ...]] = field(default_factory=list)
    """The marks of content whose instructions the user told the agent to carry out (``delegation``)."""
    origins: dict[str, Origin] = field(default_factory=dict)
    _trusted: deque[str] = field(default_factory=deque)
    _trusted_chars: int = 0
    _chunks: deque[_Chunk] = field(default_factory=deque)
    _untrusted_chars: int = 0
    _seen: dict[int, None] = field(default_factory=dict)

    def add_trusted(self, text: str, *, user: bool = False) -> None:
        """Text the user (``user``) or the deployment wrote."""
        if not text or not self._first_sight(text):
            return
        folded = fold(text)
        if user:
            self.asked |= keys(folded)
            self.asked_verbs |= categories(folded)
            self.delegated = (self.delegated + delegations(folded))[-MAX_DELEGATIONS:]
        self.trusted_values.update(v.value for v in extract(folded, scanned=True))
        self._trusted.append(folded)
        self._trusted_chars += len(folded)
        while self._trusted_chars > MAX_TRUSTED_CHARS and len(self._trusted) > 1:
            self._trusted_chars -= len(self._trusted.popleft())

    def add_untrusted(self, text: str, source: str) -> bool:
        """Text the agent read; False when it was seen before (nothing new to learn)."""
        if not text or not self._first_sight(text):
            return False
        folded = fold(text)
        adopted = any(all(mark in folded for mark in names) for names in self.delegated)
        marked = "" if adopted else marks(folded)  # the user made its instructions theirs: none are looked for
        spans = directive_spans(folded, marked) if marked else Spans([])
        for value in extract(folded, scanned=True):
            if value.value in self.trusted_values:
                continue
            span = spans.covering(value.start)
            known = self.origins.get(value.value)
            if known is None or (span is not None and not known.instructed):
                if known is None and len(self.origins) >= MAX_ORIGINS:
                    del self.origins[next(iter(self.origins))]
                where = span if span is not None else (value.start - 60, value.end + 60)
                self.origins[value.value] = Origin(value.kind, value.value, source, span is not None,
                                                   _cut(folded, *where))
        self._chunks.append(_Chunk(source, folded, spans, read_orders(marked) if marked else []))
        self._untrusted_chars += len(folded)
        while self._untrusted_chars > MAX_UNTRUSTED_CHARS and len(self._chunks) > 1:
            self._untrusted_chars -= len(self._chunks.popleft().text)
        return True

    def origin(self, value: Value) -> Origin | None:
        """Where an argument's value came from if it is tainted; None if the user supplied it or nobody did."""
        origin = self.origins.get(value.value)
        if origin is None or value.value in self.trusted_values or self.trusted_says(value.value):
            return None
        return origin

    def trusted_says(self, folded: str) -> bool:
        """Whether the user or the system prompt wrote this (folded) text."""
        return any(folded in text for text in self._trusted)

    def trusted_word(self, folded: str) -> bool:
        """Whether trusted text has this as a whole word (``13`` in "id 13", not in "May 13th")."""
        return any(find_word(text, folded) >= 0 for text in self._trusted)

    def instructed(self, folded: str, *, word: bool = False) -> tuple[str, str] | None:
        """The (source, sentence) of a directive in untrusted text that contains ``folded``, newest first.

        ``word``: ``folded`` must stand as a whole word (ids, names), not inside a longer one.
        """
        for chunk in reversed(self._chunks):
            if not chunk.spans or folded not in chunk.text:
                continue
            for start, end in chunk.spans:
                sentence = chunk.text[start:end]
                if folded in sentence and (not word or find_word(sentence, folded) >= 0):
                    return chunk.source, _cut(chunk.text, start, end)
        return None

    def instructed_action(self, action: Action) -> tuple[str, str] | None:
        """The (source, sentence) of a request in untrusted text for ``action``, newest first; None when the
        user asked for it (``Action.asked``), when it is a read of one thing only (``search_files``: too
        common to tell), or when nothing requests it."""
        if not action.stems or (action.category is None and len(action.objects) < 2):
            return None
        if action.asked(self.asked, self.asked_verbs):
            return None
        cues = action.cues
        for chunk in reversed(self._chunks):
            if not (chunk.spans or chunk.reads) or not all(cue in chunk.text for cue in cues):
                continue
            for request, stems in chunk.requests():
                if action.stems <= stems:
                    return chunk.source, _cut(chunk.text, request.start, request.end)
        return None

    def mentioned(self, name: str) -> Mention | None:
        """Where untrusted text names ``name`` (a tool) as a word, preferring a mention inside a directive."""
        folded = name.casefold()
        found: Mention | None = None
        for chunk in reversed(self._chunks):
            at = find_word(chunk.text, folded)
            while at >= 0:
                end = at + len(folded)
                following = chunk.text[end : end + _FOLLOWING]
                span = chunk.spans.covering(at)
                if span is not None:
                    return Mention(chunk.source, _cut(chunk.text, *span), True, following)
                found = found or Mention(chunk.source, _cut(chunk.text, at - 60, end + 60), False, following)
                at = find_word(chunk.text, folded, end)
        return found

    def _first_sight(self, text: str) -> bool:
        key = hash(text)
        if key in self._seen:
            return False
        if len(self._seen) >= _MAX_SEEN:
            del self._seen[next(iter(self._seen))]
        self._seen[key] = None
        return True


def find_word(text: str, word: str, start: int = 0) -> int:
    """Where ``word`` first stands alone in ``text`` from ``start``: not inside a longer word, a dotted name
    or a hyphenated one (``13`` in "id 13." but not in "13th" or "v1.13"); -1 if nowhere. A scan with
    ``str.find``, not a regex: values differ per call and compiling a pattern for each costs more than a scan."""
    if not word:
        return -1
    at = text.find(word, start)
    while at >= 0:
        end = at + len(word)
        before = text[at - 1] if at else " "
        after = text[end : end + 2]
        if not (before.isalnum() or before in "_.-") and not (after[:1].isalnum() or after[:1] in "_-"
                                                              or (after[:1] == "." and after[1:2].isalnum())):
            return at
        at = text.find(word, at + 1)
    return -1


def _cut(text: str, start: int, end: int) -> str:
    start, end = max(0, start), min(len(text), end, max(0, start) + _EXCERPT)
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")
