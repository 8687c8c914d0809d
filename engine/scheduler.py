"""Which sequences run in the next step. No torch here: this is bookkeeping, testable on its own.

Continuous batching: a new request takes a free KV slot between two steps and joins the running batch.
Prompts are fed in chunks under a per-step token budget, so a long prompt delays the sequences that are
already decoding by at most one chunk's worth of compute per step, never by its whole length.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from engine.errors import EngineError
from engine.sequence import FinishReason, Sequence, SequenceStatus
from engine.slots import SlotManager

__all__ = ["PrefillChunk", "Scheduler", "Step"]


@dataclass(frozen=True, slots=True)
class PrefillChunk:
    """Prompt positions ``[start, end)`` of ``seq`` to feed in this step."""

    seq: Sequence
    start: int
    end: int

    @property
    def completes_prompt(self) -> bool:
        return self.end == len(self.seq.prompt)


@dataclass(frozen=True, slots=True)
class Step:
    prefill: tuple[PrefillChunk, ...]
    decode: tuple[Sequence, ...]

    @property
    def empty(self) -> bool:
        return not self.prefill and not self.decode


class Scheduler:
    """FIFO admission into KV slots; each step, prompt chunks up to the budget, plus every decoding sequence."""

    def __init__(self, num_slots: int, max_seq_len: int, prefill_budget: int = 256) -> None:
        if prefill_budget < 1 or max_seq_len < 2:
            raise ValueError("prefill_budget must be >= 1 and max_seq_len >= 2")
        self.slots = SlotManager(num_slots)
        self.max_seq_len = max_seq_len
        self.prefill_budget = prefill_budget
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []

    @property
    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def add(self, seq: Sequence) -> None:
        if not 1 <= len(seq.prompt) < self.max_seq_len:
            raise EngineError(
                f"the prompt is {len(seq.prompt)} tokens; it must be between 1 and {self.max_seq_len - 1}"
            )
        self.waiting.append(seq)

    def schedule(self) -> Step:
        while self.waiting and self.slots.can_allocate():
            seq = self.waiting.popleft()
            seq.slot, seq.status = self.slots.allocate(), SequenceStatus.RUNNING
            self.running.append(seq)
        budget, chunks = self.prefill_budget, []
        for seq in self.running:
            if seq.prefilling and budget:
                n = min(budget, len(seq.prompt) - seq.cached)
                chunks.append(PrefillChunk(seq, seq.cached, seq.cached + n))
                budget -= n
        return Step(tuple(chunks), tuple(s for s in self.running if not s.prefilling))

    def finish(self, seq: Sequence, reason: FinishReason) -> None:
        """End ``seq`` and give its slot back; a waiting sequence is simply dropped."""
        if seq.status is SequenceStatus.FINISHED:
            return
        if seq.status is SequenceStatus.RUNNING and seq.slot is not None:
            self.running.remove(seq)
            self.slots.deallocate(seq.slot)
            seq.slot = None
        elif seq in self.waiting:
            self.waiting.remove(seq)
        seq.finish(reason)
