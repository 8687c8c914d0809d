"""One sequence being generated: its tokens, where it is in the KV cache, and why it stopped."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import Enum

from engine.sampling_params import Alternatives, SamplingParams

__all__ = ["FinishReason", "Sequence", "SequenceStatus"]

_ids = itertools.count()


class SequenceStatus(Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


class FinishReason(Enum):
    STOP = "stop"
    """An end-of-turn token or a stop string."""
    LENGTH = "length"
    """max_tokens, or the context window, was reached."""
    ABORT = "abort"
    """The client went away or the request was cancelled."""


@dataclass(eq=False)
class Sequence:
    """Prompt and output tokens; ``cached`` counts the tokens whose keys and values are in the cache."""

    prompt: list[int]
    params: SamplingParams
    output: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    alternatives: list[Alternatives] = field(default_factory=list)
    """Per output token, the most likely tokens when ``params.top_logprobs`` asks for them."""
    status: SequenceStatus = SequenceStatus.WAITING
    finish_reason: FinishReason | None = None
    slot: int | None = None
    cached: int = 0
    seq_id: int = field(default_factory=lambda: next(_ids))

    @property
    def length(self) -> int:
        return len(self.prompt) + len(self.output)

    @property
    def prefilling(self) -> bool:
        """Still feeding the prompt: the first output token comes from the prompt's last position."""
        return self.cached < len(self.prompt)

    def finish(self, reason: FinishReason) -> None:
        self.status = SequenceStatus.FINISHED
        self.finish_reason = reason
