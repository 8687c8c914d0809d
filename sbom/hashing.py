"""Hashing model files fast enough for multi-gigabyte weights.

Files are hashed in parallel threads (hashlib releases the GIL on large updates), largest first so that
one big shard does not finish last; within a large file, the SHA-256 and SHA-512 of each chunk are
computed at the same time. Each file is opened once without following links, checked to be a
regular file, and read into a reused buffer; if its size changes while it is read, hashing fails rather
than record digests of a file that is being rewritten.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sbom.errors import UnsafePathError
from sbom.inventory import ModelFile, open_regular_file

__all__ = ["CHUNK_SIZE", "FileDigest", "hash_files"]

CHUNK_SIZE = 4 << 20

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class FileDigest:
    """The digests of one file, as lowercase hex."""

    path: str
    size: int
    sha256: str
    sha512: str | None = None


def hash_files(
    root: Path,
    files: Sequence[ModelFile],
    *,
    sha512: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
) -> dict[str, FileDigest]:
    """Hash every file under ``root``; returns digests keyed by relative path.

    ``progress`` is called with the number of bytes just hashed, from worker threads.
    """
    if not files:
        return {}
    workers = max(1, min(workers or os.cpu_count() or 1, len(files)))
    order = sorted(files, key=lambda f: f.size, reverse=True)
    buffers = threading.local()

    def one(f: ModelFile) -> FileDigest:
        buf = getattr(buffers, "buf", None)
        if buf is None:
            buf = buffers.buf = bytearray(CHUNK_SIZE)
        return _hash_one(root, f, buf, sha512, progress)

    if workers == 1:
        results = [one(f) for f in order]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="modelgate-hash") as pool:
            results = list(pool.map(one, order))
    return {d.path: d for d in sorted(results, key=lambda d: d.path)}


def _hash_one(root: Path, f: ModelFile, buf: bytearray, sha512: bool, progress: Progress | None) -> FileDigest:
    stream, size = open_regular_file(root / f.path, f.path, buffering=0)
    h256 = hashlib.sha256()
    h512 = hashlib.sha512() if sha512 else None
    view = memoryview(buf)
    total = 0
    # Both digests of one chunk run at once on a large file, so a single big GGUF still uses two cores.
    side = ThreadPoolExecutor(1, thread_name_prefix="modelgate-sha512") if h512 and size > CHUNK_SIZE else None
    with stream:
        while n := stream.readinto(buf):
            chunk = view[:n]
            pending = side.submit(h512.update, chunk) if side and h512 else None
            h256.update(chunk)
            if pending is not None:
                pending.result()
            elif h512 is not None:
                h512.update(chunk)
            total += n
            if progress is not None:
                progress(n)
    if side is not None:
        side.shutdown()
    if total != size or total != f.size:
        raise UnsafePathError(f.path, "file changed size while it was being hashed")
    return FileDigest(f.path, total, h256.hexdigest(), h512.hexdigest() if h512 else None)
