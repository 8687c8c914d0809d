"""The engine's front door: add requests, then ``step()`` = schedule, run, postprocess.

Postprocessing decides when a sequence is done: an end-of-turn token (unless ``ignore_eos``), a stop
string, ``max_tokens``, or the end of the context window. Text is decoded by the caller's ``detokenize``,
so this module knows nothing about a particular tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

from engine.runner import ModelRunner
from engine.sampling_params import SamplingParams
from engine.scheduler import Scheduler
from engine.sequence import FinishReason, Sequence, SequenceStatus

__all__ = ["LLMEngine"]


class LLMEngine:
    """Continuous batching over one model runner. Not thread-safe: one thread calls ``add`` and ``step``."""

    def __init__(self, runner: ModelRunner, scheduler: Scheduler, *, eos_ids: Collection[int],
                 detokenize: Callable[[list[int]], str]) -> None:
        self.runner, self.scheduler = runner, scheduler
        self.eos_ids = frozenset(eos_ids)
        self.detokenize = detokenize

    def add(self, prompt: list[int], params: SamplingParams) -> Sequence:
        seq = Sequence(prompt=list(prompt), params=params)
        self.scheduler.add(seq)
        return seq

    def abort(self, seq: Sequence) -> None:
        self.scheduler.finish(seq, FinishReason.ABORT)
        self.runner.release(seq)

    @property
    def has_work(self) -> bool:
        return self.scheduler.has_work

    def step(self) -> list[Sequence]:
        """Run one step; returns the sequences that received a token (finished ones included)."""
        produced = self.runner.run(self.scheduler.schedule())
        for s in produced:
            s.seq.output.append(s.token)
            s.seq.logprobs.append(s.logprob)
            s.seq.alternatives.append(s.alternatives)
            if (reason := self._finished(s.seq)) is not None:
                self.scheduler.finish(s.seq, reason)
                self.runner.release(s.seq)
        return [s.seq for s in produced]

    def generate(self, prompts: Iterable[list[int]], params: SamplingParams) -> list[Sequence]:
        """Run prompts to completion together (offline use and tests)."""
        seqs = [self.add(p, params) for p in prompts]
        while any(s.status is not SequenceStatus.FINISHED for s in seqs):
            self.step()
        return seqs

    def _finished(self, seq: Sequence) -> FinishReason | None:
        p = seq.params
        if seq.output[-1] in self.eos_ids and not p.ignore_eos:
            return FinishReason.STOP
        if p.stop:
            # Every token is at least one byte of UTF-8, so this tail holds any stop string that just ended.
            tail = self.detokenize(seq.output[-(4 * max(map(len, p.stop)) + 4):])
            if any(stop in tail for stop in p.stop):
                return FinishReason.STOP
        if len(seq.output) >= p.max_tokens or seq.length >= self.scheduler.max_seq_len:
            return FinishReason.LENGTH
        return None
