"""What a model artifact consists of: every regular file under its root, named safely.

A model is a Hugging Face style folder or a single file (a GGUF). The inventory refuses anything that
could make the bytes that are verified differ from the bytes that are loaded: symbolic links, devices,
FIFOs, and names that could escape the root or be read differently on another system.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from sbom.errors import UnsafePathError

__all__ = ["DEFAULT_IGNORES", "ModelFile", "ModelTree", "check_relative_name", "open_regular_file", "scan_model"]

# Version-control metadata is never part of a model; the OpenSSF model-signing tool skips the same names.
DEFAULT_IGNORES = (".git", ".gitattributes", ".gitignore", ".github")

_MAX_FILES = 100_000
_MAX_DEPTH = 64
_MAX_NAME_BYTES = 4096


@dataclass(frozen=True, slots=True)
class ModelFile:
    """One regular file of the model."""

    path: str
    """POSIX path relative to the model root."""

    size: int


@dataclass(frozen=True, slots=True)
class ModelTree:
    """The files of a model, sorted by path."""

    root: Path
    """The folder the relative paths start from (the parent folder for a single-file model)."""

    files: tuple[ModelFile, ...]

    single_file: bool
    """True when the model was given as one file rather than a folder."""

    @property
    def name(self) -> str:
        """The model's name as tools print it: the folder's or the file's name."""
        return self.files[0].path if self.single_file else self.root.name

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


def check_relative_name(name: str) -> str:
    """Return ``name`` if it is a safe, canonical relative POSIX path; raise UnsafePathError otherwise.

    Used for names found on disk and, more importantly, for names read from a signed bundle, which may
    be hostile: absolute paths, ``..``, empty or ``.`` components, backslashes and control characters
    are all refused, as are names that are not in Unicode NFC (two spellings of one file name).
    """
    if not name:
        raise UnsafePathError(repr(name), "empty file name")
    if len(name.encode("utf-8", "surrogatepass")) > _MAX_NAME_BYTES:
        raise UnsafePathError(name[:80] + "...", "file name is too long")
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        raise UnsafePathError(name, "absolute paths are not allowed")
    if any(ord(c) < 0x20 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF for c in name):
        raise UnsafePathError(repr(name), "control characters or undecodable bytes in file name")
    if "\\" in name:
        raise UnsafePathError(name, "backslashes are not allowed in file names")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise UnsafePathError(name, "'..', '.' and empty path components are not allowed")
    if unicodedata.normalize("NFC", name) != name:
        raise UnsafePathError(name, "file name is not in Unicode NFC form")
    return name


def scan_model(model: str | Path, ignore: Iterable[str | Path] = (), *, default_ignores: bool = True) -> ModelTree:
    """List the model's files. ``ignore`` holds paths relative to the root, or absolute paths inside it."""
    model = Path(model)
    try:
        st = os.lstat(model)
    except OSError as exc:
        raise UnsafePathError(str(model), f"cannot read: {exc.strerror or exc}") from exc
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(str(model), "the model path is a symbolic link; pass the real path")
    if stat.S_ISREG(st.st_mode):
        check_relative_name(model.name)
        return ModelTree(root=model.parent.absolute(), files=(ModelFile(model.name, st.st_size),), single_file=True)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(str(model), "not a regular file or folder")

    root = model.absolute()
    skip = _ignore_set(root, ignore, default_ignores)
    files: list[ModelFile] = []
    _walk(root, "", skip, files, depth=0)
    if not files:
        raise UnsafePathError(str(model), "the model folder holds no files")
    files.sort(key=lambda f: f.path)
    return ModelTree(root=root, files=tuple(files), single_file=False)


def _ignore_set(root: Path, ignore: Iterable[str | Path], default_ignores: bool) -> frozenset[str]:
    names: set[str] = set(DEFAULT_IGNORES) if default_ignores else set()
    for item in ignore:
        p = Path(item)
        if p.is_absolute():
            try:
                p = p.absolute().relative_to(root)
            except ValueError:
                continue  # outside the model: nothing to ignore
        names.add(PurePosixPath(p.as_posix()).as_posix().strip("/"))
    return frozenset(names)


def _walk(folder: Path, prefix: str, skip: frozenset[str], out: list[ModelFile], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise UnsafePathError(prefix, f"folders nested deeper than {_MAX_DEPTH} levels")
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise UnsafePathError(prefix or str(folder), f"cannot list folder: {exc.strerror or exc}") from exc
    for entry in entries:
        rel = f"{prefix}{entry.name}"
        if rel in skip:
            continue
        check_relative_name(rel)
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePathError(rel, "symbolic links are not allowed in a model; copy the file in its place")
        if stat.S_ISDIR(st.st_mode):
            _walk(Path(entry.path), rel + "/", skip, out, depth + 1)
        elif stat.S_ISREG(st.st_mode):
            out.append(ModelFile(rel, st.st_size))
            if len(out) > _MAX_FILES:
                raise UnsafePathError(prefix or ".", f"more than {_MAX_FILES} files in the model")
        else:
            raise UnsafePathError(rel, "not a regular file (device, FIFO or socket)")


def open_regular_file(path: Path, name: str, *, buffering: int = -1) -> tuple[BinaryIO, int]:
    """Open a model file for reading, and its size, refusing anything swapped in since the scan.

    No links are followed, and O_NONBLOCK keeps a FIFO from blocking the open: the regular-file check on
    the open descriptor then refuses it. Every reader of model bytes opens them through here.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise UnsafePathError(name, f"cannot open: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(name, "not a regular file")
        return os.fdopen(fd, "rb", buffering=buffering), st.st_size
    except BaseException:
        os.close(fd)
        raise
