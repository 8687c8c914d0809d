"""Errors of the engine.

    ModelgateError (policies.errors)
    └── EngineError              exit 2: the engine cannot do what was asked (no network, bad path)
        ├── ModelDigestError     exit 1: a model's bytes are not the ones that were pinned or recorded
        ├── LoadRefused          exit 1: verification failed, nothing was loaded; carries the audit record
        ├── ModelConfigError     the model's configuration (config.json, GGUF metadata) is unusable
        ├── WeightError          tensors missing, misnamed, of the wrong shape or of an unsupported type
        ├── TokenizerError       the tokenizer cannot be built from the artifact
        └── ChatTemplateError    the chat template is refused (too large, too slow, unsafe) or fails
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from policies.errors import ModelgateError

if TYPE_CHECKING:
    from engine.verified_load import LoadRecord

__all__ = [
    "ChatTemplateError",
    "EngineError",
    "LoadRefused",
    "ModelConfigError",
    "ModelDigestError",
    "TokenizerError",
    "WeightError",
]


class EngineError(ModelgateError):
    """The engine could not complete the request."""


class ModelDigestError(EngineError):
    """Downloaded or cached model bytes differ from the expected digest."""

    exit_code = 1


class ModelConfigError(EngineError):
    """The model's configuration cannot be used to build it."""


class WeightError(EngineError):
    """The weights do not fit the model: missing, extra, misshapen or of an unsupported type."""


class TokenizerError(EngineError):
    """The tokenizer cannot be built from what the artifact carries."""


class ChatTemplateError(EngineError):
    """The chat template is refused or fails to render."""


class LoadRefused(EngineError):
    """The model did not verify, so nothing was loaded. ``record`` is the refusal for the audit log;
    the verification error that caused it is ``__cause__``."""

    exit_code = 1

    def __init__(self, record: LoadRecord) -> None:
        super().__init__(f"model not loaded: {record.reason}")
        self.record = record
