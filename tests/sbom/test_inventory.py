import os
from pathlib import Path

import pytest

from sbom.errors import UnsafePathError
from sbom.inventory import check_relative_name, scan_model


def _model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "config.json").write_text("{}")
    (root / "sub" / "b.txt").write_text("b")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref")
    return root


def test_lists_regular_files_sorted_and_skips_git(tmp_path: Path) -> None:
    tree = scan_model(_model(tmp_path))
    assert [f.path for f in tree.files] == ["config.json", "sub/b.txt"]
    assert tree.name == "model" and not tree.single_file and tree.total_size == 3


def test_git_metadata_is_kept_without_default_ignores(tmp_path: Path) -> None:
    tree = scan_model(_model(tmp_path), default_ignores=False)
    assert ".git/HEAD" in [f.path for f in tree.files]


def test_ignore_accepts_relative_folders_and_absolute_paths(tmp_path: Path) -> None:
    root = _model(tmp_path)
    (root / "keep.txt").write_text("k")
    tree = scan_model(root, ["sub", root / "config.json", tmp_path / "outside"])
    assert [f.path for f in tree.files] == ["keep.txt"]


def test_single_file_model(tmp_path: Path) -> None:
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF")
    tree = scan_model(f)
    assert tree.single_file and tree.name == "m.gguf" and tree.root == tmp_path


@pytest.mark.parametrize("make", ["file_link", "dir_link", "fifo"])
def test_refuses_links_and_special_files(tmp_path: Path, make: str) -> None:
    root = _model(tmp_path)
    target = root / "odd"
    if make == "file_link":
        target.symlink_to(root / "config.json")
    elif make == "dir_link":
        target.symlink_to(root / "sub")
    else:
        os.mkfifo(target)
    with pytest.raises(UnsafePathError, match="odd: (symbolic links are not allowed|not a regular file)"):
        scan_model(root)


def test_model_path_itself_may_not_be_a_link(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(_model(tmp_path))
    with pytest.raises(UnsafePathError, match="symbolic link"):
        scan_model(link)


def test_empty_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafePathError, match="holds no files"):
        scan_model(tmp_path)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("../x", r"'\.\.'"),
        ("a/../b", r"'\.\.'"),
        ("a//b", "empty path components"),
        ("./a", r"'\.'"),
        ("a\\b", "backslash"),
        ("a\nb", "control characters"),
        ("cafe\u0301", "NFC"),
    ],
)
def test_check_relative_name_refuses_hostile_names(name: str, why: str) -> None:
    with pytest.raises(UnsafePathError, match=why):
        check_relative_name(name)


def test_check_relative_name_accepts_ordinary_names() -> None:
    assert check_relative_name("model-00001-of-00002.safetensors") == "model-00001-of-00002.safetensors"
    assert check_relative_name("tokenizer/vocab.json") == "tokenizer/vocab.json"
