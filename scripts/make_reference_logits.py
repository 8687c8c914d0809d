"""Write the engine's correctness fixture: Hugging Face transformers' fp32 greedy logits on the default model.

Why a fixture: the engine must match transformers on the same weights, but transformers is slow to import and
the comparison should not depend on its version drifting under the tests. So this script records, once,
what transformers computes, together with the versions and the model digest it was computed from, and
``tests/engine/test_reference_logits.py`` checks the engine against the record.

Prompts whose top two tokens come within ``--min-margin`` logits of each other at any generated position
are skipped and reported: there, rounding differences between two correct implementations may pick a
different token, and such a test would fail for no real reason.

    python scripts/make_reference_logits.py            # rewrites tests/fixtures/engine/smollm2_reference.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import torch
import transformers

from engine.model_cache import fetch_model

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "tests" / "fixtures" / "engine" / "smollm2_reference.json"

PROMPTS: list[list[dict[str, str]]] = [
    [{"role": "user", "content": "def add(a, b):\n    # complete this Python function"}],
    [{"role": "user", "content": "Count from 1 to 10."}],
    [{"role": "user", "content": "Repeat after me: the quick brown fox jumps over the lazy dog."}],
    [{"role": "user", "content": "List the first five letters of the alphabet."}],
    [{"role": "system", "content": "You are a terse assistant. Answer in one word."},
     {"role": "user", "content": "What color is the sky on a clear day?"}],
    [{"role": "user", "content": "Say hello."},
     {"role": "assistant", "content": "Hello!"},
     {"role": "user", "content": "Now count to five."}],
    [{"role": "user", "content": "Write Python code that prints hello world."}],
    [{"role": "system", "content": "Reply with a number only."},
     {"role": "user", "content": "How many legs does a spider have?"}],
    [{"role": "user", "content": "Print the numbers 1 to 5 separated by commas."}],
    [{"role": "user", "content": "Write a Python function that returns the square of a number."}],
    [{"role": "user", "content": "What are the days of the week?"}],
    [{"role": "user", "content": "Name three primary colors."},
     {"role": "assistant", "content": "Red, blue and yellow."},
     {"role": "user", "content": "And the secondary ones?"}],
    [{"role": "user", "content": "Write a JSON object with keys name and age."}],
    [{"role": "user", "content": "Complete the quote: To be, or not to be"}],
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "user", "content": "Write a haiku about the sea."}],
    [{"role": "user", "content": "What is 12 times 7?"}],
    [{"role": "user", "content": "Translate 'good morning' into French."}],
    [{"role": "user", "content": "Tell me a fun fact about octopuses."}],
    [{"role": "user", "content": "Écris une phrase en français sur le café ☕."}],
]
"""Candidates, varied in shape (system prompt, multi-turn, code, non-ASCII); the first KEEP that are no near tie
are kept."""
KEEP = 6
NEW_TOKENS = 8
MIN_MARGIN = 0.5
"""Logits between the top two tokens; below it the prompt is a near tie and left out."""
TOLERANCE = 5e-4
"""Largest absolute logit difference the test accepts: the engine measured 3e-5 on fp32 (CPU), so 16x headroom
for other BLAS builds and thread counts."""
TOP_K = 5


def greedy_steps(model: Any, prompt: list[int]) -> list[dict[str, Any]]:
    """Greedy decoding by full forward passes: no cache, so nothing but the model itself is under test."""
    ids, steps = list(prompt), []
    with torch.inference_mode():
        for _ in range(NEW_TOKENS):
            logits = model(torch.tensor([ids])).logits[0, -1]  # [vocab]
            top = torch.topk(logits, TOP_K)
            token = int(top.indices[0])
            steps.append({"token": token, "logit": round(float(top.values[0]), 5),
                          "margin": round(float(top.values[0] - top.values[1]), 5),
                          "top5": [[int(i), round(float(v), 5)] for i, v in zip(top.indices, top.values, strict=True)]})
            ids.append(token)
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--min-margin", type=float, default=MIN_MARGIN)
    args = parser.parse_args(argv)

    path = fetch_model().path
    tokenizer = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    model.eval()
    cases, skipped = [], []
    for messages in PROMPTS:
        if len(cases) == KEEP:
            break
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        prompt = list(prompt["input_ids"] if isinstance(prompt, dict) else prompt)
        steps = greedy_steps(model, prompt)
        margin = min(step["margin"] for step in steps)
        if margin < args.min_margin:
            skipped.append({"messages": messages, "min_margin": margin})
            print(f"skipped (near tie, margin {margin:.3f}): {messages[-1]['content']!r}", file=sys.stderr)
            continue
        cases.append({"messages": messages, "prompt_ids": prompt, "steps": steps})
        print(f"kept (margin {margin:.3f}): {tokenizer.decode([s['token'] for s in steps])!r}", file=sys.stderr)

    document = {
        "model": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "reference": {"transformers": transformers.__version__, "torch": torch.__version__, "dtype": "float32",
                      "method": "greedy, full forward pass per token, no KV cache"},
        "new_tokens": NEW_TOKENS,
        "min_margin": args.min_margin,
        "tolerance": {"logit_abs": TOLERANCE},
        "skipped": skipped,
        "cases": cases,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, separators=(",", ":")) + "\n")
    print(f"wrote {len(cases)} prompts ({len(skipped)} skipped) to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
