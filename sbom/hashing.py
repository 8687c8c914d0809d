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

__all__ = ["CHUNK_SIZE", "FileDigest", "hash_files", "read_files"]

CHUNK_SIZE = 4 << 20

Progress = Callable[[int], None]
_Result = tuple["FileDigest", bytearray | None]


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
    results = _run(files, workers, lambda f, buf: _hash_one(root, f, buf, sha512, progress, keep=False))
    return {d.path: d for d, _ in results}


def read_files(
    root: Path, files: Sequence[ModelFile], *, workers: int | None = None, progress: Progress | None = None
) -> dict[str, tuple[FileDigest, bytearray]]:
    """Read every file into memory while hashing it, so that the bytes returned are exactly the bytes hashed.

    This is how a verified model is loaded: parsing the returned buffers can never see bytes other than
    the ones whose digest was compared with the signature, whatever happens to the files afterwards.
    """
    results = _run(files, workers, lambda f, buf: _hash_one(root, f, buf, False, progress, keep=True))
    return {d.path: (d, data) for d, data in results if data is not None}


def _run(
    files: Sequence[ModelFile], workers: int | None, one: Callable[[ModelFile, bytearray], _Result]
) -> list[_Result]:
    """Apply ``one`` to every file, largest first, in threads; each thread reuses one chunk buffer."""
    if not files:
        return []
    workers = max(1, min(workers or os.cpu_count() or 1, len(files)))
    order = sorted(files, key=lambda f: f.size, reverse=True)
    buffers = threading.local()

    def with_buffer(f: ModelFile) -> _Result:
        buf = getattr(buffers, "buf", None)
        if buf is None:
            buf = buffers.buf = bytearray(CHUNK_SIZE)
        return one(f, buf)

    if workers == 1:
        results = [with_buffer(f) for f in order]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="modelgate-hash") as pool:
            results = list(pool.map(with_buffer, order))
    return sorted(results, key=lambda r: r[0].path)


def _hash_one(
    root: Path, f: ModelFile, buf: bytearray, sha512: bool, progress: Progress | None, *, keep: bool
) -> _Result:
    stream, size = open_regular_file(root / f.path, f.path, buffering=0)
    if size != f.size:
        stream.close()
        raise UnsafePathError(f.path, "file changed size since the model was scanned")
    kept = bytearray(size) if keep else None
    target = memoryview(kept) if kept is not None else memoryview(buf)
    h256 = hashlib.sha256()
    h512 = hashlib.sha512() if sha512 else None
    total = 0
    # Both digests of one chunk run at once on a large file, so a single big GGUF still uses two cores.
    side = ThreadPoolExecutor(1, thread_name_prefix="modelgate-sha512") if h512 and size > CHUNK_SIZE else None
    with stream:
        while True:
            window = target[total : total + CHUNK_SIZE] if kept is not None else target
            n = stream.readinto(window) if len(window) else 0
            if not n:
                break
            chunk = window[:n]
            pending = side.submit(h512.update, chunk) if side and h512 else None
            h256.update(chunk)
            if pending is not None:
                pending.result()
            elif h512 is not None:
                h512.update(chunk)
            total += n
            if progress is not None:
                progress(n)
        grew = bool(stream.read(1))
    if side is not None:
        side.shutdown()
    if total != size or grew:
        raise UnsafePathError(f.path, "file changed size while it was being hashed")
    return FileDigest(f.path, total, h256.hexdigest(), h512.hexdigest() if h512 else None), kept
