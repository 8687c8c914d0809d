"""Text to token ids and back, with one guarantee: text a user wrote never becomes a special token.

A special token such as ``<|im_end|>`` ends a turn; if a user could produce its id by typing it, they
could forge system or assistant turns. So ``encode`` treats special-token spellings as ordinary text
unless the caller says the text is trusted, and ``encode_chat`` takes a rendered prompt as segments
marked trusted (template) or not (user data) and matches special tokens only inside trusted ones.
Every untrusted encoding is checked afterwards as well: a vocabulary whose merges could spell a
special token must not smuggle one in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tokenizers import AddedToken, Regex, decoders, models, normalizers, pre_tokenizers
from tokenizers import Tokenizer as Backend

from engine.errors import TokenizerError
from sbom.errors import MalformedFileError
from sbom.strict_json import load_strict_json

__all__ = ["END_OF_TURN_TOKENS", "IncrementalDecoder", "Tokenizer"]

END_OF_TURN_TOKENS = frozenset({"<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>"})
"""Chat formats' end-of-turn tokens: generation stops on them when the vocabulary marks them special,
even where the artifact declares only an end-of-text ``eos``."""

_CONTROL, _USER_DEFINED = 3, 4  # llama.cpp token types
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


class Tokenizer:
    """A byte-level BPE tokenizer with the special tokens kept out of reach of untrusted text."""

    def __init__(
        self,
        backend: Backend,
        *,
        special_tokens: Mapping[str, int],
        bos_token_id: int | None,
        eos_token_ids: Iterable[int],
        chat_template: str | None = None,
    ) -> None:
        self._special = backend
        self._plain = Backend.from_str(backend.to_str())
        self._plain.encode_special_tokens = True  # set once on a private copy, so encoding stays thread-safe
        self.special_tokens: Mapping[str, int] = dict(special_tokens)
        self.bos_token_id = bos_token_id
        self.eos_token_ids = frozenset(eos_token_ids)
        self.chat_template = chat_template
        self.vocab_size: int = backend.get_vocab_size(with_added_tokens=True)
        self._special_ids = frozenset(self.special_tokens.values())
        ordered = sorted(self.special_tokens, key=len, reverse=True)  # leftmost, then longest, as tokenizers does
        self._special_re = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        for token in self.special_tokens:
            if self._plain.encode(token, add_special_tokens=False).ids == [self.special_tokens[token]]:
                raise TokenizerError(f"the vocabulary spells special token {token!r} from ordinary text")

    @classmethod
    def from_tokenizer_json(cls, data: bytes, config: Mapping[str, Any] | None = None) -> Tokenizer:
        """Build from tokenizer.json bytes, plus tokenizer_config.json for bos/eos and the chat template."""
        config = config or {}
        try:
            text = data.decode("utf-8")
            document = load_strict_json(text, "tokenizer.json")
            backend = Backend.from_str(text)
        except (UnicodeDecodeError, ValueError, MalformedFileError) as exc:
            raise TokenizerError(f"tokenizer.json is unusable: {exc}") from exc
        except Exception as exc:  # the Rust library raises plain Exception
            raise TokenizerError(f"tokenizer.json is refused by the tokenizers library: {exc}") from exc
        if not isinstance(document, dict):
            raise TokenizerError("tokenizer.json is not a JSON object")
        special = {t["content"]: t["id"] for t in document.get("added_tokens") or () if t.get("special")}
        named = {k: _token_text(config.get(k)) for k in ("bos_token", "eos_token", "pad_token", "unk_token")}
        extra = [_token_text(t) for t in config.get("additional_special_tokens") or ()]
        for token in [*named.values(), *extra]:
            if token is not None and (token_id := backend.token_to_id(token)) is not None:
                special[token] = token_id
        backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
        eos = {special[t] for t in (named["eos_token"],) if t in special}
        bos = special.get(named["bos_token"] or "")
        return cls(
            backend,
            special_tokens=special,
            bos_token_id=bos,
            eos_token_ids=eos | {i for t, i in special.items() if t in END_OF_TURN_TOKENS},
            chat_template=_config_template(config.get("chat_template")),
        )

    @classmethod
    def from_gguf_metadata(cls, metadata: Mapping[str, Any]) -> Tokenizer:
        """Build from a GGUF's ``tokenizer.*`` metadata; byte-level BPE (``gpt2``) only for now."""
        kind = metadata.get("tokenizer.ggml.model")
        if kind != "gpt2":
            raise TokenizerError(f"GGUF tokenizer model {kind!r} is not supported yet (only byte-level BPE 'gpt2')")
        pre = metadata.get("tokenizer.ggml.pre")
        if pre not in _PRE_TOKENIZERS:
            raise TokenizerError(f"GGUF pre-tokenizer {pre!r} is unknown; refusing to guess how it splits text")
        tokens = _strings(metadata.get("tokenizer.ggml.tokens"), "tokenizer.ggml.tokens")
        merges = [_merge(m) for m in _strings(metadata.get("tokenizer.ggml.merges"), "tokenizer.ggml.merges")]
        types = metadata.get("tokenizer.ggml.token_type") or (1,) * len(tokens)
        if len(types) != len(tokens):
            raise TokenizerError("tokenizer.ggml.token_type and tokenizer.ggml.tokens differ in length")
        ids = {key: _token_id(metadata, key, len(tokens)) for key in ("bos", "eos", "eot", "eom", "padding")}
        special_ids = {i for i, t in enumerate(types) if t == _CONTROL} | {i for i in ids.values() if i is not None}
        try:
            backend = Backend(models.BPE({t: i for i, t in enumerate(tokens)}, merges, ignore_merges=False))
        except Exception as exc:  # the Rust library raises plain Exception
            raise TokenizerError(f"GGUF vocabulary and merges do not form a BPE model: {exc}") from exc
        if pre == "qwen2":
            backend.normalizer = normalizers.NFC()
        backend.pre_tokenizer = _PRE_TOKENIZERS[pre]()
        backend.decoder = decoders.ByteLevel()
        user = [i for i, t in enumerate(types) if t == _USER_DEFINED and i not in special_ids]
        backend.add_tokens([AddedToken(tokens[i], special=False, normalized=False) for i in user])
        special = {tokens[i]: i for i in sorted(special_ids)}
        backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
        end_ids = {i for i in (ids["eos"], ids["eot"], ids["eom"]) if i is not None}
        template = metadata.get("tokenizer.chat_template")
        return cls(
            backend,
            special_tokens=special,
            bos_token_id=ids["bos"],
            eos_token_ids=end_ids | {i for t, i in special.items() if t in END_OF_TURN_TOKENS},
            chat_template=template if isinstance(template, str) else None,
        )

    def encode(self, text: str, *, special: bool = False) -> list[int]:
        """Token ids of ``text``; only with ``special=True`` may it spell special tokens."""
        if special:
            return list(self._special.encode(text, add_special_tokens=False).ids)
        ids = list(self._plain.encode(text, add_special_tokens=False).ids)
        if forged := self._special_ids.intersection(ids):
            raise TokenizerError(f"untrusted text encoded to special token ids {sorted(forged)}")
        return ids

    def encode_chat(self, segments: Iterable[tuple[str, bool]]) -> list[int]:
        """Ids of a rendered prompt given as ``(text, trusted)`` segments, in order.

        Special tokens are matched only inside trusted segments; the ordinary text between them,
        trusted or not, is encoded as one piece so that it splits exactly as the whole string would.
        """
        ids: list[int] = []
        pending: list[str] = []
        for text, trusted in segments:
            if not trusted or self._special_re is None:
                pending.append(text)
                continue
            start = 0
            for match in self._special_re.finditer(text):
                pending.append(text[start : match.start()])
                ids += self.encode("".join(pending))
                ids.append(self.special_tokens[match.group()])
                pending, start = [], match.end()
            pending.append(text[start:])
        return ids + self.encode("".join(pending))

    def decode(self, ids: Sequence[int], *, skip_special: bool = True) -> str:
        return self._special.decode(list(ids), skip_special_tokens=skip_special)

    def token_to_id(self, token: str) -> int | None:
        return self._special.token_to_id(token)


class IncrementalDecoder:
    """Turns ids arriving one by one into text, releasing only complete UTF-8 characters.

    Byte-level tokens can split a character; decoding a window from a little before the unreleased
    ids, and holding back output that ends in U+FFFD, gives the same text as decoding all ids at once.
    """

    def __init__(self, tokenizer: Tokenizer, *, skip_special: bool = True) -> None:
        self._tokenizer = tokenizer
        self._skip_special = skip_special
        self._ids: list[int] = []
        self._prefix = 0  # the window's start, kept so merges across the boundary decode alike
        self._read = 0  # ids before this are already released

    def push(self, token_id: int) -> str:
        """Add one id; return the newly complete text, possibly empty."""
        self._ids.append(token_id)
        decode = self._tokenizer.decode
        released = decode(self._ids[self._prefix : self._read], skip_special=self._skip_special)
        window = decode(self._ids[self._prefix :], skip_special=self._skip_special)
        if window.endswith("\ufffd") or len(window) <= len(released):
            return ""
        self._prefix, self._read = self._read, len(self._ids)
        return window[len(released) :]

    def flush(self) -> str:
        """Whatever is still held back, undecodable bytes as U+FFFD; the decoder is then spent."""
        decode = self._tokenizer.decode
        released = decode(self._ids[self._prefix : self._read], skip_special=self._skip_special)
        window = decode(self._ids[self._prefix :], skip_special=self._skip_special)
        self._prefix = self._read = len(self._ids)
        return window[len(released) :]


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


def _token_text(value: object) -> str | None:
    """tokenizer_config.json spells a token as a string or as an AddedToken object."""
    if isinstance(value, Mapping):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _config_template(value: object) -> str | None:
    """A template string, or the one named ``default`` from a list of named templates."""
    if isinstance(value, list):
        named = {t.get("name"): t.get("template") for t in value if isinstance(t, Mapping)}
        value = named.get("default")
    return value if isinstance(value, str) else None
