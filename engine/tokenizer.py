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

from tokenizers import AddedToken
from tokenizers import Tokenizer as Backend

from engine.errors import TokenizerError
from engine.gguf_tokenizer import read_gguf_tokenizer
from sbom.errors import MalformedFileError
from sbom.strict_json import load_strict_json

__all__ = ["END_OF_TURN_TOKENS", "IncrementalDecoder", "Tokenizer"]

END_OF_TURN_TOKENS = frozenset({"<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>"})
"""Chat formats' end-of-turn tokens: generation stops on them when the vocabulary marks them special,
even where the artifact declares only an end-of-text ``eos``."""


class Tokenizer:
    """A BPE tokenizer (byte-level or SentencePiece) with the special tokens kept out of reach of untrusted text."""

    def __init__(
        self,
        backend: Backend,
        *,
        special_tokens: Mapping[str, int],
        bos_token_id: int | None,
        eos_token_ids: Iterable[int],
        chat_template: str | None = None,
        add_bos: bool = False,
        template_tokens: Mapping[str, str] | None = None,
    ) -> None:
        self._special = backend
        self._plain = Backend.from_str(backend.to_str())
        self._plain.encode_special_tokens = True  # set once on a private copy, so encoding stays thread-safe
        self.special_tokens: Mapping[str, int] = dict(special_tokens)
        self.bos_token_id = bos_token_id
        self.eos_token_ids = frozenset(eos_token_ids)
        self.chat_template = chat_template
        self.add_bos = add_bos  # the artifact asks for bos before a prompt; a template may already write it
        # The strings a chat template writes as {{ bos_token }} and {{ eos_token }}, as transformers passes them.
        self.template_tokens: Mapping[str, str] = dict(template_tokens or {})
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
            template_tokens={k: v for k in ("bos_token", "eos_token") if (v := named[k]) is not None},
        )

    @classmethod
    def from_gguf_metadata(cls, metadata: Mapping[str, Any]) -> Tokenizer:
        """Build from a GGUF's ``tokenizer.*`` metadata: byte-level BPE (``gpt2``) or SentencePiece (``llama``)."""
        parts = read_gguf_tokenizer(metadata)
        special = parts.special_tokens
        return cls(
            parts.backend,
            special_tokens=special,
            bos_token_id=parts.bos_token_id,
            eos_token_ids=parts.eos_token_ids | {i for t, i in special.items() if t in END_OF_TURN_TOKENS},
            chat_template=parts.chat_template,
            add_bos=parts.add_bos,
            template_tokens=parts.template_tokens,
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
