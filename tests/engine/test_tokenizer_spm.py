"""SentencePiece (``llama``) GGUF tokenizers: parity with transformers' GGUF loader, byte fallback, the guarantee."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer as Backend
from tokenizers import models, normalizers, pre_tokenizers, trainers

from engine.chat_template import ChatTemplate
from engine.errors import TokenizerError
from engine.tokenizer import IncrementalDecoder, Tokenizer
from sbom.gguf import parse_gguf

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello, world! How are you today? I am fine, thank you.",
    "def add(a, b):\n    return a + b  # the sum of two numbers\n",
    "The capital of France is Paris; the capital of Spain is Madrid.",
    "Numbers 0 1 2 3 4 5 6 7 8 9 and 3.14159, 1,000,000 <tag> s> <s",
]
TEXTS = [
    "Hello, world!",
    "the lazy fox",
    " leading space",
    "trailing space ",
    "multiple   spaces  between\twords",
    "new\nlines\n\nand\r\nCRLF\n",
    "naïve café — 日本語のテキスト, Ελληνικά",
    "emoji 🤖👍🏽🇫🇷 and ZWJ 👩‍👩‍👧",
    "def add(a, b):\n    return a + b\n",
    "",
    " ",
    "   ",
    "a<s>b</s>c",
]
LLAMA2 = "{% for m in messages %}<s>[INST] {{ m['content'] }} [/INST]</s>{% endfor %}"


def spm_vocabulary() -> tuple[list[str], list[float], list[int]]:
    """A SentencePiece-style BPE trained in-process, laid out as llama.cpp's converter writes Llama 2.

    Order: ``<unk> <s> </s>``, the 256 byte tokens, merged pieces by merge order (score = -rank), then
    single characters last with the lowest scores.
    """
    backend = Backend(models.BPE(byte_fallback=True, unk_token="<unk>"))
    backend.normalizer = normalizers.Replace(" ", "▁")
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=300, show_progress=False)
    backend.train_from_iterator(CORPUS * 10, trainer=trainer)
    model = backend.to_str()
    merges = ["".join(m if isinstance(m, list) else m.split(" ")) for m in json.loads(model)["model"]["merges"]]
    merged = list(dict.fromkeys(merges))
    chars = [t for t in backend.get_vocab() if len(t) == 1]
    bytes_ = [f"<0x{b:02X}>" for b in range(256)]
    tokens = ["<unk>", "<s>", "</s>", *bytes_, *merged, *sorted(chars)]
    scores = [0.0] * (3 + 256) + [-float(i) for i in range(len(merged) + len(chars))]
    types = [2, 3, 3, *[6] * 256, *[1] * (len(merged) + len(chars))]
    return tokens, scores, types


def write_spm_gguf(path: Path, tokens: list[str], scores: list[float], types: list[int], **flags: bool) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    if "add_bos" in flags:
        writer.add_add_bos_token(flags["add_bos"])
    if "add_space_prefix" in flags:
        writer.add_add_space_prefix(flags["add_space_prefix"])
    writer.add_chat_template(LLAMA2)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@functools.cache
def load(folder: Path, add_space_prefix: bool | None = None) -> tuple[Tokenizer, Any]:
    """Ours and transformers' tokenizer of one SPM GGUF, built once per session."""
    from transformers import AutoTokenizer

    flags = {} if add_space_prefix is None else {"add_space_prefix": add_space_prefix}
    path = write_spm_gguf(folder / f"spm-{add_space_prefix}.gguf", *spm_vocabulary(), **flags)
    metadata = parse_gguf(path.read_bytes(), path.name).metadata
    return Tokenizer.from_gguf_metadata(metadata), AutoTokenizer.from_pretrained(folder, gguf_file=path.name)


@pytest.fixture(scope="module")
def spm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Tokenizer, Any]:
    return load(tmp_path_factory.mktemp("spm"))


@pytest.fixture(scope="module")
def ours(spm: tuple[Tokenizer, Any]) -> Tokenizer:
    return spm[0]


def test_ids_match_transformers(spm: tuple[Tokenizer, Any]) -> None:
    ours, reference = spm
    for text in TEXTS:  # transformers matches special tokens in any text, as we do only in trusted text
        ids = ours.encode(text, special=True)
        assert ids == reference(text, add_special_tokens=False).input_ids, text
        assert ours.decode(ids, skip_special=False) == reference.decode(ids), text


def test_round_trip_and_byte_fallback(ours: Tokenizer) -> None:
    for text in TEXTS:
        assert ours.decode(ours.encode(text)) == text, text
    robot = [ours.token_to_id(f"<0x{b:02X}>") for b in "🤖".encode()]
    assert ours.encode("a🤖")[-4:] == robot  # not in the vocabulary: its UTF-8 bytes


def test_roles_and_bos(ours: Tokenizer) -> None:
    assert ours.special_tokens == {"<unk>": 0, "<s>": 1, "</s>": 2}
    assert ours.bos_token_id == 1 and ours.eos_token_ids == {2}
    assert ours.add_bos  # llama.cpp's default for SPM when the file does not say
    assert ours.chat_template == LLAMA2
    assert ours.template_tokens == {"bos_token": "<s>", "eos_token": "</s>"}
    assert ours.encode("<s>hi</s>", special=True) == [1, *ours.encode("hi"), 2]
    assert ours.decode([1, *ours.encode("hi there"), 2]) == "hi there"


def test_add_bos_flag_is_read(tmp_path: Path) -> None:
    path = write_spm_gguf(tmp_path / "nobos.gguf", *spm_vocabulary(), add_bos=False)
    assert not Tokenizer.from_gguf_metadata(parse_gguf(path.read_bytes(), path.name).metadata).add_bos


def test_without_space_prefix_matches_transformers(tmp_path: Path) -> None:
    ours, reference = load(tmp_path, add_space_prefix=False)
    for text in TEXTS:
        assert ours.encode(text, special=True) == reference(text, add_special_tokens=False).input_ids, text
        assert ours.decode(ours.encode(text)) == text, text
    assert ours.encode("the")[0] != ours.encode(" the")[0]


def test_incremental_decoder(ours: Tokenizer) -> None:
    for text in TEXTS:
        decoder = IncrementalDecoder(ours)
        pieces = [decoder.push(i) for i in ours.encode(text)]
        assert "".join(pieces) + decoder.flush() == text, text
        assert not any("\ufffd" in p for p in pieces)


def test_typed_special_spelling_is_ordinary_text() -> None:
    """With "<s" and ">" as high-scoring pieces llama.cpp would merge typed "<s>" into the bos id; we do not."""
    tokens, scores, types = spm_vocabulary()
    extra = {"<s": -0.5, "x<s": -0.25, "/s": -0.5}
    tok = Tokenizer.from_gguf_metadata(
        metadata(
            **{
                "tokenizer.ggml.tokens": (*tokens, *extra),
                "tokenizer.ggml.scores": (*scores, *extra.values()),
                "tokenizer.ggml.token_type": (*types, 1, 1, 1),
            }
        )
    )
    ids = tok.encode("x<s>y</s><unk>")
    assert tok.token_to_id("x<s") in ids and not set(ids) & {0, 1, 2}
    assert tok.decode(ids) == "x<s>y</s><unk>"
    assert tok.encode("<s>", special=True) == [1]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=12), st.sampled_from(["<s>", "</s>", "<unk>", "s>", "<s"])), max_size=8))
def test_user_text_never_yields_special_ids(ours: Tokenizer, parts: list[str]) -> None:
    text = "".join(parts)
    assert not set(ours.encode(text)) & {0, 1, 2}
    prompt = ChatTemplate(LLAMA2).render([{"role": "user", "content": text}])
    ids = ours.encode_chat(prompt.segments)
    assert [i for i in ids if i in (0, 1, 2)] == [1, 2]  # only the template's bos and eos
    if not any(token in text for token in ("<s>", "</s>", "<unk>")):
        assert ids == ours.encode(prompt.text, special=True)


def metadata(**overrides: Any) -> dict[str, Any]:
    tokens, scores, types = spm_vocabulary()
    base = {
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": tuple(tokens),
        "tokenizer.ggml.scores": tuple(scores),
        "tokenizer.ggml.token_type": tuple(types),
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.unknown_token_id": 0,
    }
    return base | overrides


def test_metadata_dict_builds() -> None:
    assert Tokenizer.from_gguf_metadata(metadata()).encode("Hello") != []


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"tokenizer.ggml.scores": (0.0, 1.0)}, "scores and tokenizer.ggml.tokens differ in length"),
        ({"tokenizer.ggml.scores": None}, "scores is missing"),
        ({"tokenizer.ggml.scores": ("a",)}, "not an array of finite numbers"),
        ({"tokenizer.ggml.scores": (float("nan"),)}, "finite"),
        ({"tokenizer.ggml.unknown_token_id": -1}, "outside the vocabulary"),
        ({"tokenizer.ggml.model": "t5"}, "not supported yet"),
    ],
)
def test_bad_metadata_is_refused(overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(TokenizerError, match=reason):
        Tokenizer.from_gguf_metadata(metadata(**overrides))


def test_missing_byte_tokens_are_refused() -> None:
    tokens, scores, types = spm_vocabulary()
    keep = [i for i, t in enumerate(tokens) if t != "<0xF0>"]
    pruned = metadata(
        **{
            "tokenizer.ggml.tokens": tuple(tokens[i] for i in keep),
            "tokenizer.ggml.scores": tuple(scores[i] for i in keep),
            "tokenizer.ggml.token_type": tuple(types[i] for i in keep),
        }
    )
    with pytest.raises(TokenizerError, match=r"lacks 1 byte tokens \(first <0xF0>\)"):
        Tokenizer.from_gguf_metadata(pruned)
