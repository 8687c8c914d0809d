"""Errors about the model artifact itself.

    ModelgateError (policies.errors)
    └── SbomError
        ├── UnsafePathError      a symlink, device, FIFO, or a name escaping the model root
        ├── RefusedFormatError   a code-carrying format (pickle, PyTorch zip, NumPy object array, ...)
        ├── MalformedFileError   a file that claims a format and breaks its rules (strict parsers)
        └── BomError             a CycloneDX document that is invalid, unreadable or cannot be written

They are input errors (exit 2) when producing an SBOM or a signature; verification wraps them in its
own failure type (exit 1), since there the artifact under test is what is wrong.
"""

from __future__ import annotations

from policies.errors import ModelgateError

__all__ = ["BomError", "MalformedFileError", "RefusedFormatError", "SbomError", "UnsafePathError"]


class SbomError(ModelgateError):
    """Something about a model artifact that modelgate will not accept."""


class UnsafePathError(SbomError):
    """A path in the model that must not be followed or hashed."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path


class RefusedFormatError(SbomError):
    """A file whose format can carry executable code."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(
            f"{path}: refused {kind}: this format can execute code when loaded; "
            "convert the weights to safetensors (e.g. safetensors.torch.save_file) and sign again"
        )
        self.path = path
        self.kind = kind


class MalformedFileError(SbomError):
    """A file that breaks the rules of the format it claims to be."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path
        self.why = why


class BomError(SbomError):
    """A CycloneDX document that is invalid, cannot be read, or cannot be written."""
