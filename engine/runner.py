"""The only part of the runtime that touches the device: runs a scheduled step through the model.

Prompt chunks run one sequence per forward (rows of different lengths would need padding); all decoding
sequences run together in one forward of one token each. Only positions that produce a token are turned
into vocabulary logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.config import ModelConfig
from engine.models.llama import KVCache, Transformer
from engine.sampler import Sampler
from engine.sampling_params import Alternatives
from engine.scheduler import Step
from engine.sequence import Sequence

__all__ = ["ModelRunner", "Sampled"]


@dataclass(frozen=True, slots=True)
class Sampled:
    seq: Sequence
    token: int
    logprob: float
    alternatives: Alternatives = ()


class ModelRunner:
    """Owns the model, its KV cache and the sampler on one device."""

    def __init__(self, model: Transformer, config: ModelConfig, *, num_slots: int, max_seq_len: int,
                 device: torch.device | str, dtype: torch.dtype) -> None:
        self.model = model.eval()
        self.device = torch.device(device)
        self.cache = KVCache.for_model(config, max_slots=num_slots, max_seq_len=max_seq_len, dtype=dtype,
                                       device=self.device)
        self.sampler = Sampler(self.device)

    @torch.inference_mode()
    def run(self, step: Step) -> list[Sampled]:
        """Feed the step's tokens, advance each sequence's cache count, and sample where a token is due."""
        due: list[tuple[Sequence, torch.Tensor]] = []
        for chunk in step.prefill:
            seq = chunk.seq
            tokens = torch.tensor([seq.prompt[chunk.start : chunk.end]], device=self.device)  # [1, T]
            positions = torch.arange(chunk.start, chunk.end, device=self.device).unsqueeze(0)  # [1, T]
            hidden = self.model.hidden_states(tokens, positions, self.cache, self._slots([seq]), chunk.end)  # [1, T, H]
            seq.cached = chunk.end
            if chunk.completes_prompt:
                due.append((seq, self.model.logits(hidden[0, -1])))  # only the position that is sampled
        if step.decode:
            seqs = list(step.decode)
            tokens = torch.tensor([[s.output[-1]] for s in seqs], device=self.device)  # [B, 1]
            positions = torch.tensor([[s.cached] for s in seqs], device=self.device)  # [B, 1]
            length = max(s.cached for s in seqs) + 1
            logits = self.model(tokens, positions, self.cache, self._slots(seqs), length)  # [B, 1, V]
            for row, seq in enumerate(seqs):
                seq.cached += 1
                due.append((seq, logits[row, -1]))
        if not due:
            return []
        seqs = [s for s, _ in due]
        chosen, logprobs, alternatives = self.sampler.sample(torch.stack([row for _, row in due]),
                                                             [s.params for s in seqs], [s.seq_id for s in seqs])
        return [Sampled(*fields) for fields in zip(seqs, chosen, logprobs, alternatives, strict=True)]

    def release(self, seq: Sequence) -> None:
        self.sampler.forget(seq.seq_id)

    def _slots(self, seqs: list[Sequence]) -> torch.Tensor:
        return torch.tensor([s.slot for s in seqs], device=self.device)
