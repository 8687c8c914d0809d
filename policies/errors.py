"""The root of every error modelgate raises.

    ModelgateError            exit 2: usage or input error
    └── PolicyError           a policy document that cannot be read or is invalid

Other packages derive their own families from ``ModelgateError`` (``sbom.errors``,
``attest.errors``). Each error carries the exit code that the command line maps it to, so the
mapping is decided once, where the error is defined, not in every command.
"""

from __future__ import annotations

__all__ = ["ModelgateError", "PolicyError"]


class ModelgateError(Exception):
    """A failure with a reason a user can act on."""

    exit_code: int = 2

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PolicyError(ModelgateError):
    """The policy document is missing, malformed or violates the schema."""
