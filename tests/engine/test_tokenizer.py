"""Tokenizer: tokenizer.json and GGUF builds, the special-token guarantee, streaming decode, and transformers parity."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer as Backend
from tokenizers import decoders, models, pre_tokenizers, trainers

from engine.chat_template import ChatTemplate
from engine.errors import TokenizerError
from engine.tokenizer import IncrementalDecoder, Tokenizer
from sbom.gguf import parse_gguf

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
PROMPTS = [
    "Hello, world!",
    "def add(a, b):\n    return a + b  # sum\n",
    "naïve café — 日本語のテキスト, Ελληνικά, русский",
    "emoji 🤖👍🏽🇫🇷 and ZWJ 👩‍👩‍👧",
    "tabs\t\tand   spaces\n\n\n  and\r\nCRLF   ",
    "12345 3.14159 1,000,000 x1 2x 0xFF -7e-3",
    "don't I'll WE'RE they've",
    " leading space and trailing ",
]


def tiny_tokenizer_json() -> bytes:
    """A byte-level BPE trained in-process on a small corpus, with chat special tokens."""
    backend = Backend(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train_from_iterator(PROMPTS * 20, trainer=trainer)
    return backend.to_str().encode()


@pytest.fixture(scope="module")
def tiny() -> Tokenizer:
    config = {"bos_token": "<|endoftext|>", "eos_token": {"content": "<|endoftext|>"}, "chat_template": CHATML}
    return Tokenizer.from_tokenizer_json(tiny_tokenizer_json(), config)


def test_tokenizer_json_round_trip(tiny: Tokenizer) -> None:
    for text in PROMPTS:
        assert tiny.decode(tiny.encode(text)) == text
    assert tiny.special_tokens == {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2}
    assert tiny.bos_token_id == 0
    assert tiny.eos_token_ids == {0, 2}  # declared eos plus the ChatML end of turn
    assert tiny.template_tokens == {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}
    assert tiny.chat_template == CHATML
    assert tiny.vocab_size == 400


def test_special_tokens_only_when_trusted(tiny: Tokenizer) -> None:
    assert tiny.encode("<|im_end|>", special=True) == [2]
    plain = tiny.encode("<|im_end|>")
    assert 2 not in plain and tiny.decode(plain) == "<|im_end|>"
    assert tiny.decode([1, *tiny.encode("hi"), 2], skip_special=False) == "<|im_start|>hi<|im_end|>"
    assert tiny.decode([1, *tiny.encode("hi"), 2]) == "hi"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=12), st.sampled_from(SPECIALS)), max_size=8))
def test_user_text_never_yields_special_ids(tiny: Tokenizer, parts: list[str]) -> None:
    text = "".join(parts)
    assert not set(tiny.encode(text)) & {0, 1, 2}
    prompt = ChatTemplate(CHATML).render([{"role": "user", "content": text}])
    ids = tiny.encode_chat(prompt.segments)
    assert [i for i in ids if i in (0, 1, 2)] == [1, 2, 1]  # only the template's turn markers
    assert tiny.decode(ids, skip_special=False) == prompt.text


def test_encode_chat_matches_whole_string_encoding(tiny: Tokenizer) -> None:
    messages = [{"role": "user", "content": "Hello, world!"}, {"role": "assistant", "content": "def add"}]
    prompt = ChatTemplate(CHATML).render(messages)
    assert tiny.encode_chat(prompt.segments) == tiny.encode(prompt.text, special=True)


def test_incremental_decoder_releases_only_whole_characters(tiny: Tokenizer) -> None:
    text = "emoji 🤖👍🏽 and 日本語"
    ids = tiny.encode(text)
    decoder = IncrementalDecoder(tiny)
    pieces = [decoder.push(i) for i in ids]
    assert "".join(pieces) + decoder.flush() == text
    assert not any("\ufffd" in p for p in pieces)
    assert sum(1 for p in pieces if p == "") > 0  # multi-byte characters were held back


def test_incremental_decoder_flushes_a_dangling_byte(tiny: Tokenizer) -> None:
    decoder = IncrementalDecoder(tiny)
    first_byte_of_robot = tiny.token_to_id("ð")
    assert first_byte_of_robot is not None
    assert decoder.push(first_byte_of_robot) == ""
    assert decoder.flush() == "\ufffd"


@pytest.mark.parametrize("data", [b"\xff", b"[]", b'{"version": "1.0", "version": "1.0"}', b"{}"])
def test_bad_tokenizer_json_is_refused(data: bytes) -> None:
    with pytest.raises(TokenizerError):
        Tokenizer.from_tokenizer_json(data)


def gguf_metadata(**overrides: Any) -> dict[str, Any]:
    tokens = ["<|endoftext|>", "<|im_end|>", "<think>", *pre_tokenizers.ByteLevel.alphabet(), "Ġh", "Ġhi"]
    metadata = {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "gpt2",
        "tokenizer.ggml.tokens": tuple(tokens),
        "tokenizer.ggml.token_type": (3, 3, 4, *[1] * (len(tokens) - 3)),
        "tokenizer.ggml.merges": ("Ġ h", "Ġh i"),
        "tokenizer.ggml.bos_token_id": 0,
        "tokenizer.ggml.eos_token_id": 0,
        "tokenizer.ggml.eot_token_id": 1,
        "tokenizer.chat_template": CHATML,
    }
    return metadata | overrides


def test_gguf_metadata_build() -> None:
    tok = Tokenizer.from_gguf_metadata(gguf_metadata())
    assert tok.special_tokens == {"<|endoftext|>": 0, "<|im_end|>": 1}
    assert tok.eos_token_ids == {0, 1} and tok.bos_token_id == 0
    assert tok.encode(" hi") == [tok.token_to_id("Ġhi")]
    assert tok.encode("<think>") == [2]  # user-defined tokens are ordinary added tokens, matched in any text
    assert 1 not in tok.encode("<|im_end|>") and tok.encode("<|im_end|>", special=True) == [1]
    assert tok.chat_template == CHATML


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"tokenizer.ggml.model": "t5"}, "not supported yet"),
        ({"tokenizer.ggml.pre": "mystery"}, "unknown"),
        ({"tokenizer.ggml.pre": None}, "unknown"),
        ({"tokenizer.ggml.merges": ("Ġh",)}, "two tokens"),
        ({"tokenizer.ggml.merges": ("Ġ zz",)}, "BPE model"),
        ({"tokenizer.ggml.tokens": (1, 2)}, "array of strings"),
        ({"tokenizer.ggml.token_type": (1,)}, "differ in length"),
        ({"tokenizer.ggml.eos_token_id": 10**6}, "outside the vocabulary"),
    ],
)
def test_bad_gguf_metadata_is_refused(overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(TokenizerError, match=reason):
        Tokenizer.from_gguf_metadata(gguf_metadata(**overrides))


def test_vocabulary_that_spells_a_special_token_is_refused() -> None:
    metadata = gguf_metadata(**{"tokenizer.ggml.tokens": ("hi", "h", "i"), "tokenizer.ggml.token_type": (3, 1, 1)})
    with pytest.raises(TokenizerError, match="spells special token"):
        Tokenizer.from_gguf_metadata(metadata | {"tokenizer.ggml.merges": ("h i",), "tokenizer.ggml.eot_token_id": 0})


# The real default model against transformers' own GGUF tokenizer.


@functools.cache
def load_smollm(path: Path) -> tuple[Tokenizer, Any]:
    """Ours and transformers' tokenizer of the default model, loaded once per session (about 12 s)."""
    from transformers import AutoTokenizer

    metadata = parse_gguf(path.read_bytes(), path.name).metadata
    return Tokenizer.from_gguf_metadata(metadata), AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


@pytest.fixture(scope="module")
def smollm(default_model: Path) -> tuple[Tokenizer, Any]:
    return load_smollm(default_model)


@pytest.mark.slow
def test_smollm_ids_match_transformers(smollm: tuple[Tokenizer, Any]) -> None:
    ours, reference = smollm
    for text in PROMPTS:
        assert ours.encode(text) == reference(text, add_special_tokens=False).input_ids, text
        assert ours.decode(ours.encode(text)) == text
    assert ours.vocab_size == 49152 and ours.bos_token_id == 1 and 2 in ours.eos_token_ids
    assert ours.special_tokens["<|im_end|>"] == 2 and len(ours.special_tokens) == 17


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=12), st.sampled_from(["<|im_end|>", "<|im_start|>", "<repo_name>"]))))
def test_smollm_user_text_never_yields_special_ids(smollm: tuple[Tokenizer, Any], parts: list[str]) -> None:
    ours, _ = smollm
    assert not set(ours.encode("".join(parts))) & set(ours.special_tokens.values())
