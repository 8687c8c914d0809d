"""A GGUF's ``tokenizer.*`` metadata rebuilt as a ``tokenizers`` backend that splits text as llama.cpp does.

GGUF carries no tokenizer.json, only the vocabulary and llama.cpp's names for how to use it; a guess
would tokenize differently than in training, silently. So each ``tokenizer.ggml.model`` we accept is
rebuilt to match llama.cpp's own tokenizer for it, and anything else, or anything inconsistent, is
refused with a ``TokenizerError``:

- ``gpt2``: byte-level BPE with the ranked merges stored in the file, split by the named ``pre``.
- ``llama``: SentencePiece BPE (Llama 2, Mistral, Gemma). See ``_sentencepiece_bpe`` for why BPE.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tokenizers import AddedToken, Regex, decoders, models, normalizers, pre_tokenizers
from tokenizers import Tokenizer as Backend

from engine.errors import TokenizerError

__all__ = ["GGUFTokenizer", "read_gguf_tokenizer"]

_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED = 1, 2, 3, 4  # llama.cpp token types (5 unused, 6 byte)
_SPACE = "\u2581"  # "▁", SentencePiece's visible space
_BYTE_TOKENS = tuple(f"<0x{b:02X}>" for b in range(256))
_CONTRACTIONS = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
_LLAMA3 = _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
_QWEN2 = _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def _byte_level() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)


def _split_then_bytes(pattern: str) -> pre_tokenizers.PreTokenizer:
    split = pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False)
    return pre_tokenizers.Sequence([split, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])


def _digits_then_bytes() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), _byte_level()])


_PRE_TOKENIZERS = {
    "gpt2": _byte_level,
    "gpt-2": _byte_level,
    "smollm": _digits_then_bytes,
    "starcoder": _digits_then_bytes,
    "refact": _digits_then_bytes,
    "llama3": lambda: _split_then_bytes(_LLAMA3),
    "llama-bpe": lambda: _split_then_bytes(_LLAMA3),
    "qwen2": lambda: _split_then_bytes(_QWEN2),
}
"""``tokenizer.ggml.pre`` names, spelled as llama.cpp's, to the same splitting as the model's own
tokenizer.json. An unknown name is refused: a guessed split tokenizes differently than in training,
silently."""


@dataclass(frozen=True)
class GGUFTokenizer:
    """What ``Tokenizer`` needs from a GGUF: the backend with special tokens added, and their roles."""

    backend: Backend
    special_tokens: dict[str, int]
    bos_token_id: int | None
    eos_token_ids: frozenset[int]
    add_bos: bool
    """Whether llama.cpp starts a prompt with bos (``tokenizer.ggml.add_bos_token``, its default per model)."""
    chat_template: str | None
    template_tokens: dict[str, str]
    """``bos_token`` / ``eos_token`` as the strings chat templates write."""


def read_gguf_tokenizer(metadata: Mapping[str, Any]) -> GGUFTokenizer:
    kind = metadata.get("tokenizer.ggml.model")
    if kind not in ("gpt2", "llama"):
        raise TokenizerError(
            f"GGUF tokenizer model {kind!r} is not supported yet (only byte-level BPE 'gpt2' and SentencePiece 'llama')"
        )
    tokens = _strings(metadata.get("tokenizer.ggml.tokens"), "tokenizer.ggml.tokens")
    types = metadata.get("tokenizer.ggml.token_type") or (_NORMAL,) * len(tokens)
    if len(types) != len(tokens):
        raise TokenizerError("tokenizer.ggml.token_type and tokenizer.ggml.tokens differ in length")
    ids = {key: _token_id(metadata, key, len(tokens)) for key in ("bos", "eos", "eot", "eom", "padding", "unknown")}
    if kind == "gpt2":
        backend, special_types = _byte_level_bpe(metadata, tokens), {_CONTROL}
    else:
        backend, special_types = _sentencepiece_bpe(metadata, tokens, types, ids["unknown"]), {_CONTROL, _UNKNOWN}
    named = {ids[k] for k in ("bos", "eos", "eot", "eom", "padding")} - {None}
    special_ids = {i for i, t in enumerate(types) if t in special_types} | named
    user = [i for i, t in enumerate(types) if t == _USER_DEFINED and i not in special_ids]
    backend.add_tokens([AddedToken(tokens[i], special=False, normalized=False) for i in user])
    special = {tokens[i]: i for i in sorted(special_ids)}
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
    add_bos = metadata.get("tokenizer.ggml.add_bos_token", kind == "llama")  # llama.cpp's defaults
    template = metadata.get("tokenizer.chat_template")
    return GGUFTokenizer(
        backend=backend,
        special_tokens=special,
        bos_token_id=ids["bos"],
        eos_token_ids=frozenset(i for i in (ids["eos"], ids["eot"], ids["eom"]) if i is not None),
        add_bos=bool(add_bos) and ids["bos"] is not None,
        chat_template=template if isinstance(template, str) else None,
        template_tokens={f"{role}_token": tokens[i] for role in ("bos", "eos") if (i := ids[role]) is not None},
    )


def _byte_level_bpe(metadata: Mapping[str, Any], tokens: list[str]) -> Backend:
    pre = metadata.get("tokenizer.ggml.pre")
    if pre not in _PRE_TOKENIZERS:
        raise TokenizerError(f"GGUF pre-tokenizer {pre!r} is unknown; refusing to guess how it splits text")
    merges = [_merge(m) for m in _strings(metadata.get("tokenizer.ggml.merges"), "tokenizer.ggml.merges")]
    try:
        backend = Backend(models.BPE({t: i for i, t in enumerate(tokens)}, merges, ignore_merges=False))
    except Exception as exc:  # the Rust library raises plain Exception
        raise TokenizerError(f"GGUF vocabulary and merges do not form a BPE model: {exc}") from exc
    if pre == "qwen2":
        backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = _PRE_TOKENIZERS[pre]()
    backend.decoder = decoders.ByteLevel()
    return backend


def _sentencepiece_bpe(
    metadata: Mapping[str, Any], tokens: list[str], types: Sequence[int], unknown: int | None
) -> Backend:
    """llama.cpp's SPM tokenizer as a ``tokenizers`` BPE.

    Why BPE and not Unigram: llama.cpp tokenizes every ``llama`` GGUF by greedy merging, always joining
    the adjacent pair whose concatenation is the highest-scoring vocabulary entry (Viterbi over unigram
    log-probs is its separate ``t5``/UGM model). The scores are merge priorities, so the merges are
    every split of a piece into two vocabulary entries, ranked by the piece's score. Characters outside
    the vocabulary fall back to the ``<0xNN>`` tokens, spaces become "▁" and, unless
    ``add_space_prefix`` is false, one is prepended to each run of text between special tokens.

    One deliberate difference: nothing merges into a control, unknown, byte or unused token, so typed
    text such as ``<s>`` stays ordinary pieces instead of forging the id (llama.cpp would merge it).
    """
    scores = metadata.get("tokenizer.ggml.scores")
    if (
        not isinstance(scores, Sequence)
        or isinstance(scores, str)
        or not all(isinstance(s, (int, float)) and math.isfinite(s) for s in scores)
    ):
        raise TokenizerError("GGUF metadata tokenizer.ggml.scores is missing or not an array of finite numbers")
    if len(scores) != len(tokens):
        raise TokenizerError("tokenizer.ggml.scores and tokenizer.ggml.tokens differ in length")
    vocab = {t: i for i, t in enumerate(tokens)}
    if missing := [b for b in _BYTE_TOKENS if b not in vocab]:
        raise TokenizerError(
            f"the SentencePiece vocabulary lacks {len(missing)} byte tokens (first {missing[0]}); "
            "text outside the vocabulary could not be encoded"
        )
    ranked = sorted(
        (-scores[i], i, cut, piece[:cut], piece[cut:])
        for i, piece in enumerate(tokens)
        if types[i] == _NORMAL
        for cut in range(1, len(piece))
        if piece[:cut] in vocab and piece[cut:] in vocab
    )
    unk = tokens[unknown] if unknown is not None else None
    try:
        model = models.BPE(vocab, [(left, right) for *_, left, right in ranked], unk_token=unk, byte_fallback=True)
    except Exception as exc:  # the Rust library raises plain Exception
        raise TokenizerError(f"GGUF vocabulary does not form a SentencePiece BPE model: {exc}") from exc
    backend = Backend(model)
    replace = normalizers.Replace(" ", _SPACE)
    prefix = metadata.get("tokenizer.ggml.add_space_prefix", True)
    backend.normalizer = normalizers.Sequence([normalizers.Prepend(_SPACE), replace]) if prefix else replace
    steps = [decoders.Replace(_SPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
    backend.decoder = decoders.Sequence([*steps, decoders.Strip(" ", 1, 0)] if prefix else steps)
    return backend


def _strings(value: object, key: str) -> list[str]:
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise TokenizerError(f"GGUF metadata {key} is missing or not an array of strings")
    return list(value)


def _merge(merge: str) -> tuple[str, str]:
    left, space, right = merge.partition(" ")
    if not space or not left or not right or " " in right:
        raise TokenizerError(f"GGUF merge {merge!r} is not two tokens separated by one space")
    return left, right


def _token_id(metadata: Mapping[str, Any], role: str, vocab_size: int) -> int | None:
    value = metadata.get(f"tokenizer.ggml.{role}_token_id")
    if value is None:
        return None
    if not isinstance(value, int) or not 0 <= value < vocab_size:
        raise TokenizerError(f"GGUF {role} token id {value!r} is outside the vocabulary of {vocab_size}")
    return value
