"""What each file of a model is for: weights, tokenizer, chat template, configuration, documentation.

Reviewers and policies reason about roles, not file names: a chat template changes what a model says as
much as its weights do, and it may sit in its own ``.jinja`` file, inside ``tokenizer_config.json`` or
inside a GGUF. A role therefore comes from three places, each a table below: the detected format, the
file's name, and the keys the file carries. A file can have several roles.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum
from fnmatch import fnmatchcase
from pathlib import PurePosixPath

from sbom.formats import FileFormat

__all__ = ["Role", "file_roles"]


class Role(StrEnum):
    """The part a file plays; the order here is the order roles are listed in."""

    WEIGHTS = "weights"
    WEIGHTS_INDEX = "weights-index"
    CONFIG = "config"
    TOKENIZER = "tokenizer"
    CHAT_TEMPLATE = "chat-template"
    DOCUMENTATION = "documentation"
    OTHER = "other"


_BY_FORMAT = {
    FileFormat.SAFETENSORS: Role.WEIGHTS,
    FileFormat.GGUF: Role.WEIGHTS,
    FileFormat.SENTENCEPIECE: Role.TOKENIZER,
}

# Lower-cased base names, as the Hugging Face, Mistral and llama.cpp ecosystems write them.
_BY_NAME: tuple[tuple[str, Role], ...] = (
    ("*.index.json", Role.WEIGHTS_INDEX),
    ("config.json", Role.CONFIG),
    ("generation_config.json", Role.CONFIG),
    ("preprocessor_config.json", Role.CONFIG),
    ("processor_config.json", Role.CONFIG),
    ("adapter_config.json", Role.CONFIG),
    ("quantize_config.json", Role.CONFIG),
    ("params.json", Role.CONFIG),
    ("tokenizer.json", Role.TOKENIZER),
    ("tokenizer_config.json", Role.TOKENIZER),
    ("special_tokens_map.json", Role.TOKENIZER),
    ("added_tokens.json", Role.TOKENIZER),
    ("vocab.json", Role.TOKENIZER),
    ("vocab.txt", Role.TOKENIZER),
    ("merges.txt", Role.TOKENIZER),
    ("tekken.json", Role.TOKENIZER),
    ("*.tiktoken", Role.TOKENIZER),
    ("*.jinja", Role.CHAT_TEMPLATE),
    ("chat_template.json", Role.CHAT_TEMPLATE),
    ("readme*", Role.DOCUMENTATION),
    ("*.md", Role.DOCUMENTATION),
    ("licen[cs]e*", Role.DOCUMENTATION),
    ("notice*", Role.DOCUMENTATION),
    ("copying*", Role.DOCUMENTATION),
    ("use_policy*", Role.DOCUMENTATION),
)

# Top-level JSON keys and GGUF metadata keys. They never collide, so one table serves both formats.
_BY_KEY: tuple[tuple[str, Role], ...] = (
    ("chat_template", Role.CHAT_TEMPLATE),
    ("tokenizer.chat_template", Role.CHAT_TEMPLATE),
    ("tokenizer.chat_template.*", Role.CHAT_TEMPLATE),
    ("tokenizer.ggml.tokens", Role.TOKENIZER),
    ("general.architecture", Role.CONFIG),
)

_ORDER = {role: i for i, role in enumerate(Role)}


def file_roles(name: str, fmt: FileFormat, keys: Collection[str] = ()) -> tuple[Role, ...]:
    """The roles of the file at relative path ``name``; ``keys`` are the content keys it carries."""
    base = PurePosixPath(name).name.lower()
    roles = {_BY_FORMAT[fmt]} if fmt in _BY_FORMAT else set()
    roles.update(role for pattern, role in _BY_NAME if fnmatchcase(base, pattern))
    roles.update(role for pattern, role in _BY_KEY if any(fnmatchcase(key, pattern) for key in keys))
    return tuple(sorted(roles, key=_ORDER.__getitem__)) or (Role.OTHER,)
