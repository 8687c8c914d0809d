"""Decode speed of modelgate's engine against Hugging Face transformers on the same weights, in one run.

    python bench/engine_decode.py [--model PATH.gguf] [--tokens 64] [--json]

Prints batch-1 decode tokens/s and time to first token, and aggregate tokens/s with 8 and 32 concurrent
requests, for modelgate (exact fp32, and with int8 decode weights), for transformers (batch-1, its generate()
loop) and, when llama-cpp-python is installed, for llama.cpp on the same GGUF (batch-1), with the ratios the
targets are stated in: batch-1 >= 1.5x transformers and >= 0.5x llama.cpp; aggregate at 32 >= 4x own batch-1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from engine.config import from_gguf_metadata
from engine.layers.int8_linear import use_int8_decode
from engine.llm_engine import LLMEngine
from engine.model_cache import fetch_model
from engine.models.llama import build_model
from engine.runner import ModelRunner
from engine.sampling_params import SamplingParams
from engine.scheduler import Scheduler
from engine.weights import load_gguf_tensors

PROMPT_LEN = 32


def prompts(count: int, vocab: int) -> list[list[int]]:
    return [[1 + (97 * i + 13 * j) % (vocab - 1) for j in range(PROMPT_LEN)] for i in range(count)]


def modelgate_run(model, config, batch: int, tokens: int) -> tuple[float, float]:
    """(aggregate decode tokens/s, mean time to first token in s) for ``batch`` concurrent requests."""
    runner = ModelRunner(model, config, num_slots=batch, max_seq_len=PROMPT_LEN + tokens + 1, device="cpu",
                         dtype=torch.float32)
    engine = LLMEngine(runner, Scheduler(batch, PROMPT_LEN + tokens + 1, prefill_budget=PROMPT_LEN * batch),
                       eos_ids=(), detokenize=lambda ids: "")
    params = SamplingParams(temperature=0.0, max_tokens=tokens, ignore_eos=True)
    seqs = [engine.add(p, params) for p in prompts(batch, config.vocab_size)]
    start, first = time.perf_counter(), {}
    while engine.has_work:
        for seq in engine.step():
            first.setdefault(seq.seq_id, time.perf_counter() - start)
    elapsed = time.perf_counter() - start
    return sum(len(s.output) for s in seqs) / elapsed, sum(first.values()) / len(first)


def transformers_run(path: Path, tokens: int) -> tuple[float, float]:
    from transformers import AutoModelForCausalLM

    reference = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    ids = torch.tensor(prompts(1, reference.config.vocab_size))
    mask = torch.ones_like(ids)
    kwargs = {"do_sample": False, "attention_mask": mask, "pad_token_id": 0}
    reference.generate(ids, max_new_tokens=2, **kwargs)  # warm up
    start = time.perf_counter()
    reference.generate(ids, max_new_tokens=1, min_new_tokens=1, **kwargs)
    ttft = time.perf_counter() - start
    start = time.perf_counter()
    reference.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, **kwargs)
    return tokens / (time.perf_counter() - start), ttft


def llama_cpp_run(path: Path, tokens: int, threads: int) -> tuple[float, float] | None:
    """llama.cpp's batch-1 (decode tokens/s, time to first token), or None when llama-cpp-python is absent."""
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    llm = Llama(model_path=str(path), n_ctx=PROMPT_LEN + tokens + 8, n_threads=threads, n_batch=PROMPT_LEN,
                verbose=False)
    ids = prompts(1, llm.n_vocab())[0]

    def run(count: int) -> tuple[float, float]:
        start, first, made = time.perf_counter(), 0.0, 0
        for _ in llm.generate(ids, temp=0.0, top_k=1, reset=True):  # never stops at EOS by itself
            made += 1
            if made == 1:
                first = time.perf_counter()
            if made == count:
                break
        return (made - 1) / (time.perf_counter() - first), first - start

    run(4)  # warm up
    return run(tokens)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="a GGUF file [default: the default model]")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    path = args.model or fetch_model().path
    torch.set_num_threads(len(os.sched_getaffinity(0)))

    gguf, tensors = load_gguf_tensors(path.read_bytes(), path.name)
    config = from_gguf_metadata(gguf.metadata, tensor_names=[t.name for t in gguf.tensors])
    model = build_model(config, tensors, device="cpu", dtype=torch.float32)
    modelgate_run(model, config, 1, 4)  # warm up
    ours = {batch: modelgate_run(model, config, batch, args.tokens) for batch in (1, 8, 32)}
    use_int8_decode(model)  # the CPU fast path: int8 weights for decode rows, fp32 for prompt chunks
    modelgate_run(model, config, 1, 4)
    int8 = modelgate_run(model, config, 1, args.tokens)
    theirs = transformers_run(path, args.tokens)
    llama_cpp = llama_cpp_run(path, args.tokens, torch.get_num_threads())
    result = {
        "model": path.name,
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "modelgate_batch1_tokens_per_s": round(ours[1][0], 1),
        "modelgate_batch1_ttft_s": round(ours[1][1], 3),
        "modelgate_int8_decode_batch1_tokens_per_s": round(int8[0], 1),
        "modelgate_aggregate_8_tokens_per_s": round(ours[8][0], 1),
        "modelgate_aggregate_32_tokens_per_s": round(ours[32][0], 1),
        "transformers_batch1_tokens_per_s": round(theirs[0], 1),
        "transformers_batch1_ttft_s": round(theirs[1], 3),
        "batch1_vs_transformers": round(ours[1][0] / theirs[0], 2),
        "int8_decode_batch1_vs_transformers": round(int8[0] / theirs[0], 2),
        "aggregate32_vs_own_batch1": round(ours[32][0] / ours[1][0], 2),
        "aggregate32_vs_own_int8_batch1": round(ours[32][0] / int8[0], 2),
    }
    if llama_cpp is not None:
        result |= {
            "llama_cpp_batch1_tokens_per_s": round(llama_cpp[0], 1),
            "llama_cpp_batch1_ttft_s": round(llama_cpp[1], 3),
            "int8_decode_batch1_vs_llama_cpp": round(int8[0] / llama_cpp[0], 2),
        }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:40s} {value}")
        print("targets: batch1_vs_transformers >= 1.5, int8_decode_batch1_vs_llama_cpp >= 0.5, "
              "aggregate32_vs_own_batch1 >= 4")
        if llama_cpp is None:
            print("llama.cpp: not measured (pip install llama-cpp-python to compare; it builds from source)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
