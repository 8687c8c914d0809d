"""Reading and writing the small documents around a model: BOMs, bundles, keys, certificates.

Reads are capped, so a hostile path (a huge file, /dev/zero) cannot exhaust memory. Writes appear whole
or not at all: other programs may read a BOM or bundle while it is written, and a private key must
never exist, even briefly, with open permissions.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["DocumentTooLarge", "read_capped", "write_atomically"]


class DocumentTooLarge(ValueError):
    """The file is larger than the cap for its kind of document."""


def read_capped(path: Path, limit: int) -> bytes:
    """The file's bytes; DocumentTooLarge past ``limit`` bytes, OSError when it cannot be read."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise DocumentTooLarge(f"{path} is larger than {limit} bytes")
    return data


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
