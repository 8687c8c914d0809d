"""The user handing their authority to a document: "do the actions specified in the email from ...".

Instructions in untrusted content are the mark of a hijack, unless the user asked the agent to carry them
out. A user who writes "please do the tasks listed in the file 'todo.txt'" or "follow the instructions in
the email from 'ops@example.com' with the subject 'Rollout'" has made those instructions theirs, and the
agent acting on them is doing its job. This module finds such delegations in the user's own text and the
marks that name the delegated content: the quoted strings and the values (addresses, links, numbers) of
the delegating sentence. A text the agent reads is delegated when it holds every mark of a delegation;
a delegation that names nothing delegates nothing (a vague "do what the documents say" is no licence for
whatever text the agent meets).

The risk is the user's choice, and bounded: only the content they named is trusted with instructions.
"""

from __future__ import annotations

import re

from gateway.detect.values import extract

__all__ = ["delegations"]

_DELEGATE = re.compile(
    r"\b(?:do|perform|carry out|complete|execute|follow|handle|take care of|act on|apply)\b(?: [\w'-]+){0,3}? "
    r"(?:actions?|tasks?|instructions?|steps?|todos?|to-dos?|requests?|items|directions|orders)\b"
    r"(?: \w+)? (?:specified|listed|described|given|mentioned|written|found|contained|outlined|in|from|of)\b"
)
_QUOTED = re.compile(r"'([^']{2,200})'|\"([^\"]{2,200})\"|`([^`]{2,200})`|“([^”]{2,200})”")
_SENTENCE_END = re.compile(r"[.!?] (?=\S)")


def delegations(folded: str) -> list[tuple[str, ...]]:
    """The marks (folded) of every delegating sentence of the user's folded text that names its content."""
    found: list[tuple[str, ...]] = []
    for match in _DELEGATE.finditer(folded):
        stop = _SENTENCE_END.search(folded, match.end())
        sentence = folded[match.end() : stop.start() if stop else len(folded)]
        marks = {next(g for g in quoted.groups() if g) for quoted in _QUOTED.finditer(sentence)}
        marks |= {sentence[value.start : value.end] for value in extract(sentence, scanned=True)}
        if marks:
            found.append(tuple(sorted(marks)))
    return found
