import hashlib
import os
from pathlib import Path

import pytest

from sbom.errors import UnsafePathError
from sbom.hashing import CHUNK_SIZE, hash_files, read_files
from sbom.inventory import ModelFile, scan_model


def test_digests_match_hashlib_across_sizes_and_workers(tmp_path: Path) -> None:
    sizes = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 7]
    blobs = {f"f{i}.bin": os.urandom(n) for i, n in enumerate(sizes)}
    for name, data in blobs.items():
        (tmp_path / name).write_bytes(data)
    tree = scan_model(tmp_path)
    seen: list[int] = []
    for workers in (1, 4):
        digests = hash_files(tree.root, tree.files, sha512=True, workers=workers, progress=seen.append)
        for name, data in blobs.items():
            assert digests[name].sha256 == hashlib.sha256(data).hexdigest()
            assert digests[name].sha512 == hashlib.sha512(data).hexdigest()
            assert digests[name].size == len(data)
    assert sum(seen) == 2 * sum(sizes)


def test_sha512_only_when_asked(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    tree = scan_model(tmp_path)
    assert hash_files(tree.root, tree.files)["a"].sha512 is None


def test_file_that_changed_size_since_the_scan_fails(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"abc")
    with pytest.raises(UnsafePathError, match="changed size"):
        hash_files(tmp_path, [ModelFile("a", 2)])


def test_link_swapped_in_after_the_scan_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"abc")
    (tmp_path / "a").symlink_to(tmp_path / "real")
    with pytest.raises(UnsafePathError, match="cannot open"):
        hash_files(tmp_path, [ModelFile("a", 3)])


def test_read_files_returns_exactly_the_hashed_bytes(tmp_path: Path) -> None:
    blobs = {"big.bin": os.urandom(2 * CHUNK_SIZE + 5), "small.json": b"{}", "empty.txt": b""}
    for name, data in blobs.items():
        (tmp_path / name).write_bytes(data)
    tree = scan_model(tmp_path)
    seen: list[int] = []
    loaded = read_files(tree.root, tree.files, progress=seen.append)
    for name, data in blobs.items():
        digest, kept = loaded[name]
        assert bytes(kept) == data and digest.sha256 == hashlib.sha256(data).hexdigest()
    assert sum(seen) == sum(map(len, blobs.values()))


def test_read_files_refuses_a_file_that_grew_after_the_scan(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"abc")
    tree = scan_model(tmp_path)
    (tmp_path / "a").write_bytes(b"abcd")
    with pytest.raises(UnsafePathError, match="changed size"):
        read_files(tree.root, tree.files)
