"""The short example each package opens with still runs (examples marked +SKIP need a model or a network)."""

from __future__ import annotations

import doctest
import importlib

import pytest

PACKAGES = ["policies", "sbom", "attest", "attest.tee.snp", "attest.tee.tdx", "attest.tee.nvidia", "engine",
            "engine.models.llama", "gateway", "gateway.protocols", "gateway.detect"]


@pytest.mark.parametrize("name", PACKAGES)
def test_package_example_runs(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__ and ">>>" in module.__doc__, f"{name} has no example"
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
