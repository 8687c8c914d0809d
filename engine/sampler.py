"""Choosing the next token for each row of a batch, on the device the logits are on.

Greedy rows take the argmax and are exactly deterministic. Sampled rows apply temperature, top-k and
top-p, then draw with the request's own generator, so a seeded request gives the same tokens whatever
else shares its batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from engine.sampling_params import Alternatives, SamplingParams

__all__ = ["Sampler"]


class Sampler:
    """Keeps one random generator per seeded request, created on first use."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self._generators: dict[int, torch.Generator] = {}

    def forget(self, seq_id: int) -> None:
        self._generators.pop(seq_id, None)

    def sample(
        self, logits: torch.Tensor, params: Sequence[SamplingParams], seq_ids: Sequence[int]
    ) -> tuple[list[int], list[float], list[Alternatives]]:
        """``logits`` [B, vocab] -> each row's chosen token, its log-probability under the model, and the
        ``top_logprobs`` most likely tokens (empty for rows that did not ask)."""
        logits = logits.float()
        logprobs = torch.log_softmax(logits, dim=-1)  # [B, V]
        chosen = torch.argmax(logits, dim=-1)  # [B]
        for row, (p, seq_id) in enumerate(zip(params, seq_ids, strict=True)):
            if not p.greedy:
                chosen[row] = self._draw(logits[row], p, seq_id)
        picked = logprobs.gather(-1, chosen.unsqueeze(-1)).squeeze(-1)  # [B]
        return chosen.tolist(), picked.tolist(), self._alternatives(logprobs, params)

    @staticmethod
    def _alternatives(logprobs: torch.Tensor, params: Sequence[SamplingParams]) -> list[Alternatives]:
        widest = max((p.top_logprobs for p in params), default=0)
        if not widest:
            return [() for _ in params]
        values, tokens = torch.topk(logprobs, min(widest, logprobs.shape[-1]), dim=-1)  # [B, k] each, one transfer
        rows = zip(tokens.tolist(), values.tolist(), params, strict=True)
        return [tuple(zip(t[: p.top_logprobs], v[: p.top_logprobs], strict=True)) for t, v, p in rows]

    def _draw(self, logits: torch.Tensor, p: SamplingParams, seq_id: int) -> torch.Tensor:
        scores = logits / p.temperature  # [V]
        if p.top_k:
            kth = torch.topk(scores, min(p.top_k, scores.numel())).values[-1]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if p.top_p < 1.0:
            ordered, order = torch.sort(scores, descending=True)
            cumulative = torch.softmax(ordered, dim=-1).cumsum(-1)
            drop = cumulative - torch.softmax(ordered, dim=-1) >= p.top_p  # keep the smallest set reaching top_p
            scores = scores.scatter(0, order[drop], float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        return torch.multinomial(probs, 1, generator=self._generator(p, seq_id)).squeeze(0)

    def _generator(self, p: SamplingParams, seq_id: int) -> torch.Generator | None:
        if p.seed is None:
            return None
        if seq_id not in self._generators:
            self._generators[seq_id] = torch.Generator(device=self.device).manual_seed(p.seed)
        return self._generators[seq_id]
