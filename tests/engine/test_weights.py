"""engine.weights: GGUF and safetensors buffers to HF-named tensors, against transformers and gguf."""

from __future__ import annotations

import json
import mmap
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter
from gguf.quants import dequantize as reference
from gguf.quants import quantize
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import EngineError, ModelConfigError, WeightError
from engine.weights import load_gguf_tensors, load_safetensors_tensors, shard_files_from_index
from sbom.errors import MalformedFileError, SbomError, UnsafePathError
from tests.builders import llama_cpp_gguf, llama_cpp_permute, tiny_llama_tensors


def _hf_state_dict(kind: str, *, tie: bool = False) -> dict[str, np.ndarray]:
    """A randomly initialised tiny HF model's weights: 4 query heads, 2 key/value heads, head_dim 16."""
    import transformers

    torch.manual_seed(0)
    shape = dict(vocab_size=64, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=tie)
    if kind == "llama":
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**shape))
    else:
        model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**shape))
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    if tie:
        del state["lm_head.weight"]
    return state


def _load(path: Path, **kwargs: object) -> dict[str, torch.Tensor]:
    return load_gguf_tensors(path.read_bytes(), path.name, **kwargs)[1]  # type: ignore[arg-type]


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_hf_checkpoint_round_trips_through_llama_cpp_layout(tmp_path: Path, arch: str) -> None:
    """llama permutes Q/K rows on conversion and qwen2 does not; either way we get the HF tensors back."""
    state = _hf_state_dict(arch)
    if arch == "qwen2":
        assert "model.layers.0.self_attn.q_proj.bias" in state
    path = llama_cpp_gguf(tmp_path / "m.gguf", state, arch=arch, n_head=4, n_kv_head=2)
    loaded = _load(path)
    assert loaded.keys() == state.keys()
    for name, array in state.items():
        assert torch.equal(loaded[name], torch.from_numpy(array)), name


def test_stored_rows_really_are_permuted(tmp_path: Path) -> None:
    """Guards the round trip above against a vacuous pass: the file's attn_q rows differ from HF's."""
    from gguf import GGUFReader

    state = _hf_state_dict("llama")
    path = llama_cpp_gguf(tmp_path / "m.gguf", state, arch="llama", n_head=4, n_kv_head=2)
    stored = {t.name: np.asarray(t.data) for t in GGUFReader(path).tensors}
    hf_q = state["model.layers.0.self_attn.q_proj.weight"]
    assert not np.array_equal(stored["blk.0.attn_q.weight"], hf_q)
    assert np.array_equal(stored["blk.0.attn_q.weight"], llama_cpp_permute(hf_q, 4))


def test_tied_embeddings_have_no_lm_head(tmp_path: Path) -> None:
    state = _hf_state_dict("llama", tie=True)
    loaded = _load(llama_cpp_gguf(tmp_path / "m.gguf", state, arch="llama", n_head=4, n_kv_head=2))
    assert "lm_head.weight" not in loaded and loaded.keys() == state.keys()


def test_quantized_tensors_equal_reference_dequantization(tmp_path: Path) -> None:
    """Quantization blocks lie within rows, so permuting rows commutes with it: compare in HF layout."""
    state = _hf_state_dict("llama")
    qtypes = {"model.embed_tokens.weight": Q.Q8_0, "model.layers.0.self_attn.q_proj.weight": Q.Q4_0,
              "model.layers.0.self_attn.k_proj.weight": Q.Q4_1, "model.layers.1.mlp.down_proj.weight": Q.BF16,
              "model.layers.1.mlp.up_proj.weight": Q.F16}
    path = llama_cpp_gguf(tmp_path / "m.gguf", state, arch="llama", n_head=4, n_kv_head=2, qtypes=qtypes)
    loaded = _load(path, dtype=torch.float16)
    for name, qtype in qtypes.items():
        expected = np.ascontiguousarray(reference(quantize(state[name], qtype), qtype)).astype(np.float32)
        assert loaded[name].dtype == torch.float16
        assert torch.equal(loaded[name], torch.from_numpy(expected).half()), name


def test_unsupported_quant_type_names_tensor(tmp_path: Path) -> None:
    state = _hf_state_dict("llama")
    path = llama_cpp_gguf(tmp_path / "m.gguf", state, arch="llama", n_head=4, n_kv_head=2,
                          qtypes={"model.layers.0.mlp.up_proj.weight": Q.Q5_0})
    with pytest.raises(WeightError, match="'blk.0.ffn_up.weight' has ggml type Q5_0"):
        _load(path)


def test_hf_names_in_a_gguf_are_refused(gguf_model: Path) -> None:
    """The shared tiny GGUF stores HF names; llama.cpp never does, so the loader fails closed."""
    with pytest.raises(WeightError, match="model.embed_tokens.weight"):
        _load(gguf_model)


def _gguf(path: Path, arch: str, tensors: dict[str, np.ndarray], **counts: int) -> bytes:
    writer = GGUFWriter(str(path), arch)
    for key, value in counts.items():
        writer.add_uint32(f"{arch}.{key.replace('__', '.')}", value)
    for name, array in tensors.items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def test_rope_freqs_kept_and_rotary_cache_ignored(tmp_path: Path) -> None:
    freqs = np.arange(1, 9, dtype=np.float32)
    data = _gguf(tmp_path / "m.gguf", "llama", {"rope_freqs.weight": freqs, "blk.0.attn_rot_embd.weight": freqs},
                 block_count=1, attention__head_count=1)
    _, loaded = load_gguf_tensors(data, "m.gguf")
    assert list(loaded) == ["rope_freqs.weight"] and torch.equal(loaded["rope_freqs.weight"], torch.from_numpy(freqs))


@pytest.mark.parametrize(("arch", "counts", "tensors", "error", "match"), [
    ("gpt2", {"block_count": 1, "attention__head_count": 1}, {}, ModelConfigError, "'gpt2' is not supported"),
    ("llama", {"attention__head_count": 1}, {}, ModelConfigError, "llama.block_count"),
    ("llama", {"block_count": 1, "attention__head_count": 0}, {}, ModelConfigError, "head_count must"),
    ("llama", {"block_count": 1, "attention__head_count": 1}, {"blk.1.attn_norm.weight": np.ones(4, np.float32)},
     WeightError, "block 1, but the model has 1"),
    ("llama", {"block_count": 1, "attention__head_count": 1}, {"blk.0.attn_norm.bias": np.ones(4, np.float32)},
     WeightError, "attn_norm.bias"),
    ("llama", {"block_count": 1, "attention__head_count": 1}, {"blk.00.ffn_up.weight": np.ones(4, np.float32)},
     WeightError, "blk.00"),
    ("llama", {"block_count": 1, "attention__head_count": 3},
     {"blk.0.attn_q.weight": np.ones((4, 4), np.float32)}, WeightError, "4 rows do not split into 3 heads"),
])
def test_bad_metadata_or_names_fail_closed(tmp_path: Path, arch: str, counts: dict[str, int],
                                           tensors: dict[str, np.ndarray], error: type[Exception], match: str) -> None:
    data = _gguf(tmp_path / "m.gguf", arch, tensors, **counts)
    with pytest.raises(error, match=match):
        load_gguf_tensors(data, "m.gguf")


@pytest.fixture(scope="module")
def small_gguf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    state = {k: v[:, :32] if v.ndim == 2 else v for k, v in tiny_llama_tensors(vocab=8, hidden=32).items()}
    state = {k: v for k, v in state.items() if "proj" not in k or "q_proj" in k}
    state["model.layers.0.self_attn.q_proj.weight"] = np.ones((32, 32), np.float32)
    path = tmp_path_factory.mktemp("gguf") / "s.gguf"
    return llama_cpp_gguf(path, state, arch="llama", n_head=2, n_kv_head=1,
                          qtypes={"model.layers.0.self_attn.q_proj.weight": Q.Q4_1}).read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 10**6), flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=4))
def test_hostile_gguf_raises_only_our_errors(small_gguf: bytes, cut: int, flips: list[tuple[int, int]]) -> None:
    data = bytearray(small_gguf[: len(small_gguf) - cut % len(small_gguf)])
    for at, xor in flips:
        if data:
            data[at % len(data)] ^= xor
    try:
        load_gguf_tensors(bytes(data), "hostile.gguf")
    except (EngineError, SbomError):
        pass


def test_truncated_gguf_is_malformed(small_gguf: bytes) -> None:
    with pytest.raises(MalformedFileError):
        load_gguf_tensors(small_gguf[:-1], "t.gguf")


def test_loads_from_a_read_only_mmap_without_warnings(tmp_path: Path, hf_model: Path) -> None:
    path = hf_model / "model.safetensors"
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        loaded = load_safetensors_tensors({"model.safetensors": mapped})
    expected = tiny_llama_tensors()
    assert loaded.keys() == expected.keys()
    for name, array in expected.items():
        assert torch.equal(loaded[name], torch.from_numpy(array)), name
    loaded["model.norm.weight"].add_(1)  # owned, writable memory, long after the mapping closed


def _safetensors(entries: dict[str, tuple[str, list[int], bytes]]) -> bytes:
    header, blobs, offset = {}, [], 0
    for name, (dtype, shape, blob) in entries.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + b"".join(blobs)


def test_safetensors_dtypes_and_cast() -> None:
    halves = np.array([1.5, -2.0], np.float16)
    data = _safetensors({"h": ("F16", [2], halves.tobytes()), "i": ("I64", [1, 2], np.array([[7, 8]]).tobytes()),
                         "b": ("BOOL", [3], b"\x00\x01\x01"), "z": ("F32", [0, 4], b""),
                         "bf": ("BF16", [1], torch.tensor([3.0], dtype=torch.bfloat16).view(torch.uint8).numpy()
                                .tobytes())})
    loaded = load_safetensors_tensors({"a.safetensors": data}, dtype=torch.float32)
    assert torch.equal(loaded["h"], torch.tensor([1.5, -2.0]))
    assert loaded["i"].dtype == torch.int64 and loaded["i"].tolist() == [[7, 8]]
    assert loaded["b"].tolist() == [False, True, True]
    assert loaded["z"].shape == (0, 4) and loaded["bf"].item() == 3.0
    assert load_safetensors_tensors({"a.safetensors": data})["h"].dtype == torch.float16


@pytest.mark.parametrize(("files", "match"), [
    ({"a.safetensors": _safetensors({"x": ("F32", [1], bytes(4))}),
      "b.safetensors": _safetensors({"x": ("F32", [1], bytes(4))})}, "'x' of b.safetensors is also in another"),
    ({"a.safetensors": _safetensors({"x": ("F8_E4M3", [2], bytes(2))})}, "dtype F8_E4M3"),
    ({"a.safetensors": _safetensors({"x": ("BOOL", [2], b"\x01\x02")})}, "BOOL byte"),
])
def test_safetensors_refusals(files: dict[str, bytes], match: str) -> None:
    with pytest.raises(WeightError, match=match):
        load_safetensors_tensors(files)


def test_truncated_safetensors_is_malformed() -> None:
    with pytest.raises(MalformedFileError):
        load_safetensors_tensors({"a.safetensors": _safetensors({"x": ("F32", [2], bytes(8))})[:-1]})


def test_shard_index() -> None:
    index = {"metadata": {"total_size": 8}, "weight_map": {"a": "model-00002-of-00002.safetensors",
                                                           "b": "model-00001-of-00002.safetensors",
                                                           "c": "model-00001-of-00002.safetensors"}}
    assert shard_files_from_index(json.dumps(index).encode(), "i.json") == ["model-00001-of-00002.safetensors",
                                                                             "model-00002-of-00002.safetensors"]


@pytest.mark.parametrize(("raw", "error"), [
    (b'{"weight_map": {"a": "../x.safetensors"}}', UnsafePathError),
    (b'{"weight_map": {"a": "x.bin"}}', ModelConfigError),
    (b'{"weight_map": {}}', ModelConfigError),
    (b'[1]', ModelConfigError),
    (b'{"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}}', MalformedFileError),
    (b'{"weight_map": ', MalformedFileError),
    (b'\xff', MalformedFileError),
])
def test_shard_index_refusals(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        shard_files_from_index(raw, "model.safetensors.index.json")


@pytest.mark.slow
def test_default_model_matches_transformers(default_model: Path) -> None:
    import transformers

    with default_model.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        start = time.perf_counter()
        _, ours = load_gguf_tensors(mapped, default_model.name)
        seconds = time.perf_counter() - start
    print(f"load_gguf_tensors({default_model.name}): {seconds:.2f} s")
    model = transformers.AutoModelForCausalLM.from_pretrained(default_model.parent, gguf_file=default_model.name,
                                                              dtype=torch.float32)
    theirs = model.state_dict()
    assert "lm_head.weight" not in ours  # tied: transformers shares the embedding
    assert torch.equal(theirs["lm_head.weight"], ours["model.embed_tokens.weight"])
    assert ours.keys() == theirs.keys() - {"lm_head.weight"}
    for name, tensor in ours.items():
        assert torch.allclose(tensor, theirs[name], rtol=0, atol=1e-6), name


@pytest.mark.parametrize("kind", ["gguf", "safetensors"])
def test_refusal_lets_the_caller_close_its_mmap(tmp_path: Path, gguf_model: Path, kind: str) -> None:
    """A typed error must not pin views of the buffer, or closing the mapping raises BufferError instead."""
    path = gguf_model if kind == "gguf" else tmp_path / "x.safetensors"
    if kind == "safetensors":
        path.write_bytes(_safetensors({"x": ("F8_E4M3", [2], bytes(2))}))
    with pytest.raises(WeightError), path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        if kind == "gguf":
            load_gguf_tensors(m, path.name)
        else:
            load_safetensors_tensors({path.name: m})
