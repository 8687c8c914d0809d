"""The OpenSSF model-signing vectors under ../shared/vectors/signing (a skip when they are absent)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import shared_path


def signing_vector(*parts: str) -> Path:
    """A file under vectors/signing, e.g. ``signing_vector("sigstore-prod-trust-config.json")``."""
    return shared_path("vectors", "signing", *parts)


def model_bundle(vector: str) -> bytes:
    """The ``model.sig`` of one model-transparency vector folder."""
    return signing_vector("model-transparency", vector, "model.sig").read_bytes()


def vector_key(name: str) -> Path:
    """One of the test keys and certificates in model-transparency/keys/certificate."""
    return signing_vector("model-transparency", "keys", "certificate", name)
