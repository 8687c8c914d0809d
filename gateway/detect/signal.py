"""One observation of the injection detector, and how observations add up to a score.

Each rule reports a ``Signal`` with a weight in [0, 1]: roughly the probability, on its own, that text carrying
it is an injection. Signals of different rules are treated as independent evidence (noisy-OR), so two weak hints
("send ... to an address" and "addressed to the assistant") add up to an alert while either alone stays below
it; repeats of one rule count once, with their strongest weight.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Signal", "combine", "excerpt", "strongest"]

EXCERPT_CHARS = 120
"""Longest evidence excerpt: enough to show the phrase, short enough for an audit row."""


@dataclass(frozen=True, slots=True)
class Signal:
    rule: str
    """The rule's short name; the finding's id is ``detect.injection.<rule>``."""
    weight: float
    evidence: str
    """What matched, as a short excerpt."""
    note: str = ""
    """Where it was seen when that is not the plain text (``hidden in tag characters``, ``base64``)."""


def excerpt(text: str, start: int, end: int, pad: int = 20) -> str:
    """The matched span with a little context, bounded to ``EXCERPT_CHARS``, newlines shown as spaces."""
    lo, hi = max(0, start - pad), min(len(text), end + pad)
    hi = min(hi, lo + EXCERPT_CHARS)
    piece = " ".join(text[lo:hi].split())
    return ("…" if lo else "") + piece + ("…" if hi < len(text) else "")


def strongest(signals: list[Signal]) -> dict[str, Signal]:
    """The strongest signal of each rule."""
    best: dict[str, Signal] = {}
    for signal in signals:
        if signal.rule not in best or signal.weight > best[signal.rule].weight:
            best[signal.rule] = signal
    return best


def combine(signals: list[Signal]) -> float:
    """Noisy-OR over rules: ``1 - prod(1 - w)`` of each rule's strongest weight."""
    clean = 1.0
    for signal in strongest(signals).values():
        clean *= 1.0 - min(1.0, max(0.0, signal.weight))
    return 1.0 - clean
