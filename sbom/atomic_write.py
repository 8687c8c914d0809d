"""Writing a file so that it appears whole or not at all.

BOMs, bundles and keys are read by other programs, possibly while they are being written; a reader must
never see half a document, and a private key must never exist, even briefly, with open permissions.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(path: Path, data: bytes, *, mode: int = 0o644, overwrite: bool = True) -> None:
    """Write ``data`` to a temporary file beside ``path`` (``mode`` from the start, fsynced), then move it.

    With ``overwrite=False`` an existing ``path`` raises FileExistsError, atomically (no check-then-write
    race). Other failures raise OSError; callers turn both into their own error type.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
