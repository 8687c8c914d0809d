"""Tiny but real model artifacts for tests: safetensors written byte by byte, GGUF by the reference writer."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from attest.bundle import Signer
    from policies.schema import Policy

CHAT_TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """The safetensors layout: u64 header length, JSON header padded with spaces to 8 bytes, then the data."""
    dtypes = {np.float32: "F32", np.float16: "F16", np.int32: "I32", np.int64: "I64", np.uint8: "U8"}
    header: dict[str, object] = {"__metadata__": metadata} if metadata else {}
    offset, blobs = 0, []
    for name, array in tensors.items():
        data = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": dtypes[array.dtype.type], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def tiny_llama_tensors(vocab: int = 32, hidden: int = 8, layers: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    tensors = {"model.embed_tokens.weight": rng.standard_normal((vocab, hidden), dtype=np.float32),
               "model.norm.weight": np.ones(hidden, dtype=np.float32)}
    for i in range(layers):
        for part in ("q_proj", "k_proj", "v_proj", "o_proj"):
            tensors[f"model.layers.{i}.self_attn.{part}.weight"] = rng.standard_normal((hidden, hidden),
                                                                                      dtype=np.float32)
    return tensors


def tiny_hf_model(folder: Path, *, vocab: int = 32, hidden: int = 8) -> Path:
    """A Hugging Face style folder: config, tokenizer, tokenizer_config with a chat template, one safetensors."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
              "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
              "max_position_embeddings": 256, "vocab_size": vocab, "torch_dtype": "float32"}
    (folder / "config.json").write_text(json.dumps(config))
    tokenizer = {"version": "1.0", "model": {"type": "BPE", "vocab": {f"t{i}": i for i in range(vocab)}, "merges": []}}
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE,
                                                              "model_max_length": 256}))
    write_safetensors(folder / "model.safetensors", tiny_llama_tensors(vocab, hidden), {"format": "pt"})
    return folder


def tiny_gguf(path: Path, *, vocab: int = 32, hidden: int = 8) -> Path:
    """A GGUF v3 file with llama metadata, a tokenizer vocabulary and a chat template, via gguf.GGUFWriter."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    writer.add_context_length(256)
    writer.add_embedding_length(hidden)
    writer.add_block_count(1)
    writer.add_head_count(2)
    writer.add_head_count_kv(1)
    writer.add_file_type(0)
    writer.add_string("general.license", "apache-2.0")
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"t{i}" for i in range(vocab)])
    writer.add_chat_template(CHAT_TEMPLATE)
    for name, array in tiny_llama_tensors(vocab, hidden).items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


_LLAMA_CPP_NAMES = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
                    "lm_head.weight": "output.weight"}
_LLAMA_CPP_PARTS = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
                    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
                    "post_attention_layernorm": "ffn_norm", "self_attn.q_norm": "attn_q_norm",
                    "self_attn.k_norm": "attn_k_norm"}


def llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """What llama.cpp's converter does to Llama Q/K rows: HF's half-split rotary dims become adjacent pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama_cpp_gguf(path: Path, state_dict: dict[str, np.ndarray], *, arch: str, n_head: int, n_kv_head: int,
                   qtypes: dict[str, object] | None = None) -> Path:
    """A GGUF as llama.cpp's converter writes an HF Llama/Qwen checkpoint: its names, Q/K permuted for llama.

    ``qtypes`` maps an HF name to a ``gguf.GGMLQuantizationType`` to store that tensor quantized.
    """
    import gguf

    layers = 1 + max(int(k.split(".")[2]) for k in state_dict if k.startswith("model.layers."))
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(layers)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv_head)
    for name, array in state_dict.items():
        if name.startswith("model.layers."):
            _, _, index, *part, kind = name.split(".")
            target = f"blk.{index}.{_LLAMA_CPP_PARTS['.'.join(part)]}.{kind}"
        else:
            target = _LLAMA_CPP_NAMES[name]
        if arch == "llama" and (".attn_q." in target or ".attn_k." in target):
            array = llama_cpp_permute(array, n_head if ".attn_q." in target else n_kv_head)
        qtype = (qtypes or {}).get(name)
        if qtype is None:
            writer.add_tensor(target, np.ascontiguousarray(array, dtype=np.float32))
        else:
            packed = gguf.quants.quantize(array, qtype)  # F16 stays a float16 array; the rest are bytes
            writer.add_tensor(target, packed, raw_dtype=qtype if packed.dtype == np.uint8 else None)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


CHATML_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                   "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
_CORPUS = ["The capital of France is Paris.", "Hello, how are you today?", "Numbers: 0 1 2 3 4 5 6 7 8 9.",
           '{"name": "get_weather", "arguments": {"city": "Paris"}}', "<tool_call> </tool_call> system user"]


def tiny_chat_model(folder: Path, *, vocab: int = 320, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """A random Llama with a real trained byte-level BPE tokenizer and a ChatML template.

    The special tokens' output rows are zero while the others are random, so greedy decoding never ends a
    turn by itself: a test decides how generation stops (max_tokens or a stop string).
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(_CORPUS * 4, trainer)
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": None, "eos_token": "<|im_end|>", "chat_template": CHATML_TEMPLATE}))
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3)
        model.lm_head.weight[: len(special)] = 0
    (folder / "config.json").write_text(json.dumps(config.to_dict() | {"architectures": ["LlamaForCausalLM"]}))
    write_safetensors(folder / "model.safetensors", {k: v.numpy() for k, v in model.state_dict().items()},
                      {"format": "pt"})
    return folder


def sign_unchecked(folder: Path, signer: Signer) -> dict[str, Any]:
    """A bundle over a folder's bytes as they are, skipping the format firewall that ``sign_model`` runs.

    What a careless or hostile signer's own tooling could produce: the signature is valid, so only the
    loader's own checks stand between these bytes and the engine.
    """
    from attest.statement import IN_TOTO_PAYLOAD_TYPE, modelgate_statement
    from sbom.hashing import hash_files
    from sbom.inventory import scan_model

    tree = scan_model(folder, ())
    bom = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1}
    return signer.sign(IN_TOTO_PAYLOAD_TYPE, modelgate_statement(hash_files(tree.root, tree.files), bom))


def simulated_tee_policy(base: str = "production") -> Policy:
    """A shipped policy that also accepts the simulated TEE, as tests on a machine without one need."""
    from policies.loader import shipped_policy

    policy = shipped_policy(base)
    return policy.model_copy(update={"attestation": policy.attestation.model_copy(update={"allow_simulated": True})})


def write_simulated_tee_policy(folder: Path, base: str = "production") -> Path:
    """``simulated_tee_policy`` as a YAML file, for the command line."""
    import yaml

    path = folder / f"{base}-simulated-tee.yaml"
    path.write_text(yaml.safe_dump(simulated_tee_policy(base).model_dump(mode="json")))
    return path


def simulated_tee() -> dict[str, Any]:
    """The ``tee`` and ``identity`` arguments of ``load_verified`` for the simulated TEE."""
    from attest.tee.simulated import SimulatedProvider
    from engine.identity import EngineIdentity

    return {"tee": SimulatedProvider(), "identity": EngineIdentity.generate()}
