"""Errors of the engine.

    ModelgateError (policies.errors)
    └── EngineError              exit 2: the engine cannot do what was asked (no network, bad path)
        └── ModelDigestError     exit 1: a model's bytes are not the ones that were pinned or recorded
"""

from __future__ import annotations

from policies.errors import ModelgateError

__all__ = ["EngineError", "ModelDigestError"]


class EngineError(ModelgateError):
    """The engine could not complete the request."""


class ModelDigestError(EngineError):
    """Downloaded or cached model bytes differ from the expected digest."""

    exit_code = 1
