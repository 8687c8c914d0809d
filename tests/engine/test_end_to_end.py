"""The whole engine path on real weights: sign, verified load, build, chat, generate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from attest.bundle import KeySigner
from attest.keys import generate_private_key
from attest.signing import sign_model
from attest.trust import TrustAnchors
from engine.llm_engine import LLMEngine
from engine.loader import build_loaded_model
from engine.runner import ModelRunner
from engine.sampling_params import SamplingParams
from engine.scheduler import Scheduler
from engine.verified_load import load_verified
from tests.builders import simulated_tee, simulated_tee_policy


def _engine(model_path: Path) -> tuple[LLMEngine, object]:
    key = generate_private_key("ecdsa-p256")
    bundle = json.dumps(sign_model(model_path, KeySigner(key)).bundle).encode()
    artifact = load_verified(model_path, bundle, TrustAnchors(keys=(key.public_key(),)), simulated_tee_policy(),
                             **simulated_tee())
    loaded = build_loaded_model(artifact, device="cpu")
    runner = ModelRunner(loaded.model, loaded.config, num_slots=4, max_seq_len=512, device="cpu", dtype=loaded.dtype)
    engine = LLMEngine(runner, Scheduler(4, 512), eos_ids=loaded.tokenizer.eos_token_ids,
                       detokenize=loaded.tokenizer.decode)
    return engine, loaded


@pytest.mark.slow
def test_default_model_answers_through_the_verified_path(default_model: Path, tmp_path: Path) -> None:
    model = tmp_path / default_model.name
    model.write_bytes(default_model.read_bytes())
    engine, loaded = _engine(model)
    assert loaded.record.decision == "loaded" and loaded.record.policy == "production"
    questions = ["What is the capital of France?", "What is 2 + 2?"]
    prompts = [loaded.tokenizer.encode_chat(loaded.chat_template.render([{"role": "user", "content": q}]).segments)
               for q in questions]
    seqs = engine.generate(prompts, SamplingParams(temperature=0.0, max_tokens=16))
    answers = [loaded.tokenizer.decode(s.output) for s in seqs]
    assert "Paris" in answers[0]
    assert all(s.finish_reason.value == "stop" for s in seqs)

    from transformers import AutoModelForCausalLM

    reference = AutoModelForCausalLM.from_pretrained(str(model.parent), gguf_file=model.name, dtype=torch.float32)
    for prompt, seq in zip(prompts, seqs, strict=True):
        expected = reference.generate(torch.tensor([prompt]), max_new_tokens=16, do_sample=False,
                                      attention_mask=torch.ones(1, len(prompt), dtype=torch.long))
        assert seq.output == expected[0, len(prompt):].tolist()
