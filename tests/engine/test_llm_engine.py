"""Continuous batching must not change results: concurrent requests give what each gives alone."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from engine.config import from_hf_config
from engine.llm_engine import LLMEngine
from engine.models.llama import build_model
from engine.runner import ModelRunner
from engine.sampling_params import SamplingParams
from engine.scheduler import Scheduler
from engine.sequence import FinishReason

VOCAB = 97
GREEDY = SamplingParams(temperature=0.0, max_tokens=12, ignore_eos=True)


@pytest.fixture(scope="module")
def reference() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         attn_implementation="eager")
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)  # sharper logits than the default init: fewer near ties in greedy decoding
    return model


def _engine(reference: LlamaForCausalLM, *, slots: int = 4, budget: int = 256) -> LLMEngine:
    config = from_hf_config(reference.config.to_dict() | {"architectures": ["LlamaForCausalLM"]})
    model = build_model(config, reference.state_dict(), device="cpu", dtype=torch.float32)
    runner = ModelRunner(model, config, num_slots=slots, max_seq_len=128, device="cpu", dtype=torch.float32)
    return LLMEngine(runner, Scheduler(slots, 128, budget), eos_ids={0}, detokenize=lambda ids: " ".join(map(str, ids)))


PROMPTS = [[(7 * i + j) % (VOCAB - 1) + 1 for j in range(n)] for i, n in enumerate([3, 17, 40, 1, 9, 25])]


def test_concurrent_requests_equal_each_request_alone(reference: LlamaForCausalLM) -> None:
    together = _engine(reference, slots=4, budget=16).generate(PROMPTS, GREEDY)  # 6 requests, 4 slots, chunked
    alone = [_engine(reference).generate([p], GREEDY)[0] for p in PROMPTS]
    assert [s.output for s in together] == [s.output for s in alone]
    assert all(s.finish_reason is FinishReason.LENGTH and len(s.output) == 12 for s in together)


def test_greedy_tokens_match_transformers(reference: LlamaForCausalLM) -> None:
    """The reference is plain full forwards and argmax: no logits processors (generate() suppresses EOS)."""
    ours = _engine(reference).generate(PROMPTS, GREEDY)
    for prompt, seq in zip(PROMPTS, ours, strict=True):
        tokens = list(prompt)
        with torch.no_grad():
            for _ in range(12):
                tokens.append(int(reference(torch.tensor([tokens])).logits[0, -1].argmax()))
        assert seq.output == tokens[len(prompt):]


def test_logprobs_are_those_of_the_chosen_tokens(reference: LlamaForCausalLM) -> None:
    seq = _engine(reference).generate([PROMPTS[1]], SamplingParams(temperature=0.0, max_tokens=3, logprobs=True,
                                                                   ignore_eos=True))[0]
    with torch.no_grad():
        logits = reference(torch.tensor([PROMPTS[1] + seq.output])).logits[0]
    expected = torch.log_softmax(logits[len(PROMPTS[1]) - 1 : -1], -1).gather(-1, torch.tensor(seq.output)[:, None])
    assert seq.logprobs == pytest.approx(expected.squeeze(-1).tolist(), abs=1e-4)


def test_stop_conditions(reference: LlamaForCausalLM) -> None:
    engine = _engine(reference)
    free = engine.generate([PROMPTS[2]], GREEDY)[0].output
    stop_at = free[4]
    eos = _engine(reference)
    eos.eos_ids = frozenset({stop_at})
    seq = eos.generate([PROMPTS[2]], SamplingParams(temperature=0.0, max_tokens=12))[0]
    assert seq.finish_reason is FinishReason.STOP and seq.output[-1] == stop_at and len(seq.output) <= 5
    text_stop = SamplingParams(temperature=0.0, max_tokens=12, ignore_eos=True, stop=(f"{free[2]} {free[3]}",))
    seq = _engine(reference).generate([PROMPTS[2]], text_stop)[0]
    assert seq.finish_reason is FinishReason.STOP and seq.output[-2:] == free[2:4]


def test_seeded_sampling_is_reproducible_under_batching(reference: LlamaForCausalLM) -> None:
    params = SamplingParams(temperature=0.9, top_p=0.95, seed=123, max_tokens=8, ignore_eos=True)
    alone = _engine(reference).generate([PROMPTS[3]], params)[0].output
    mixed = _engine(reference, slots=3).generate([PROMPTS[0], PROMPTS[3], PROMPTS[5]], params)[1].output
    assert alone == mixed
