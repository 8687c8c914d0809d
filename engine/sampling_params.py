"""How one completion is sampled. Validated once, where the request enters, so the runtime can trust it."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.errors import EngineError

__all__ = ["Alternatives", "SamplingParams"]

Alternatives = tuple[tuple[int, float], ...]
"""The most likely tokens at one position, most likely first, with their log-probabilities."""

MAX_STOP_STRINGS = 4
MAX_STOP_LENGTH = 256
MAX_TOP_LOGPROBS = 20


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Greedy when ``temperature`` is 0: exactly deterministic. Otherwise top-k, then top-p, then sample."""

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    """0 disables top-k."""
    seed: int | None = None
    """Per-request seed: the same seed, prompt and parameters give the same tokens."""
    stop: tuple[str, ...] = field(default=())
    """Strings that end the completion; the server leaves them out of the returned text."""
    logprobs: bool = False
    top_logprobs: int = 0
    """How many of the most likely tokens to report, with their log-probabilities, at each position."""
    ignore_eos: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.max_tokens <= 1 << 20:
            raise EngineError(f"max_tokens must be between 1 and {1 << 20}, not {self.max_tokens}")
        if not 0.0 <= self.temperature <= 2.0:
            raise EngineError(f"temperature must be between 0 and 2, not {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise EngineError(f"top_p must be in (0, 1], not {self.top_p}")
        if not 0 <= self.top_logprobs <= MAX_TOP_LOGPROBS:
            raise EngineError(f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}, not {self.top_logprobs}")
        if self.top_k < 0:
            raise EngineError(f"top_k must be 0 (off) or positive, not {self.top_k}")
        if len(self.stop) > MAX_STOP_STRINGS or any(not s or len(s) > MAX_STOP_LENGTH for s in self.stop):
            raise EngineError(f"at most {MAX_STOP_STRINGS} stop strings of 1 to {MAX_STOP_LENGTH} characters")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0
