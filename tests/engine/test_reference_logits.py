"""The engine against Hugging Face transformers fp32 on the default model: same greedy tokens, same logits.

The reference numbers come from ``scripts/make_reference_logits.py``, which also states the tolerance and
leaves out prompts whose top two tokens are a near tie.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from engine.chat_template import ChatTemplate
from engine.config import from_gguf_metadata
from engine.models.llama import KVCache, Transformer, build_model
from engine.tokenizer import Tokenizer
from engine.weights import load_gguf_tensors
from tests.conftest import FIXTURES

REFERENCE = FIXTURES / "engine" / "smollm2_reference.json"


@pytest.fixture(scope="module")
def reference(default_model: Path) -> dict[str, Any]:
    document = json.loads(REFERENCE.read_text())
    if hashlib.sha256(default_model.read_bytes()).hexdigest() != document["sha256"]:
        pytest.skip(f"the default model is not the one {REFERENCE.name} was made from; rerun the script")
    return document


@pytest.fixture(scope="module")
def ours(default_model: Path) -> tuple[Transformer, Tokenizer]:
    gguf, tensors = load_gguf_tensors(default_model.read_bytes(), default_model.name)
    config = from_gguf_metadata(gguf.metadata, tensor_names=[t.name for t in gguf.tensors])
    model = build_model(config, tensors, device="cpu", dtype=torch.float32)
    return model, Tokenizer.from_gguf_metadata(gguf.metadata)


def greedy_logits(model: Transformer, prompt: list[int], steps: int) -> list[torch.Tensor]:
    """Prefill, then one cached decode step per token: the path the runner takes."""
    cache = KVCache.for_model(model.config, max_slots=1, max_seq_len=len(prompt) + steps, dtype=torch.float32,
                              device="cpu")
    slots = torch.zeros(1, dtype=torch.long)
    tokens, positions = torch.tensor([prompt]), torch.arange(len(prompt))[None]
    out = []
    with torch.inference_mode():
        for _ in range(steps):
            logits = model(tokens, positions, cache, slots)[0, -1]  # [vocab]
            out.append(logits)
            tokens, positions = logits.argmax().view(1, 1), positions[:, -1:] + 1
    return out


@pytest.mark.slow
def test_the_fixture_has_no_near_ties_and_states_its_tolerance(reference: dict[str, Any]) -> None:
    assert len(reference["cases"]) >= 5
    assert all(step["margin"] >= reference["min_margin"] for case in reference["cases"] for step in case["steps"])
    assert reference["tolerance"]["logit_abs"] <= 1e-3


@pytest.mark.slow
def test_engine_matches_transformers_fp32(reference: dict[str, Any], ours: tuple[Transformer, Tokenizer]) -> None:
    model, tokenizer = ours
    assert tokenizer.chat_template is not None
    template = ChatTemplate(tokenizer.chat_template)
    tolerance, worst = reference["tolerance"]["logit_abs"], 0.0
    for case in reference["cases"]:
        prompt = tokenizer.encode_chat(template.render(case["messages"]).segments)
        assert prompt == case["prompt_ids"], case["messages"]
        logits = greedy_logits(model, prompt, len(case["steps"]))
        assert [int(step.argmax()) for step in logits] == [step["token"] for step in case["steps"]], case["messages"]
        for step, expected in zip(logits, case["steps"], strict=True):
            ids = torch.tensor([i for i, _ in expected["top5"]])
            diff = (step[ids] - torch.tensor([v for _, v in expected["top5"]])).abs().max().item()
            worst = max(worst, diff)
    print(f"largest |logit - transformers fp32| over the top-5 of every step: {worst:.2e} (tolerance {tolerance})")
    assert worst <= tolerance
