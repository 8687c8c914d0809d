"""Choosing where evidence comes from: the guest's TEE, a file, or the simulated provider.

``auto`` takes the TEE when the machine has one (configfs-tsm is mounted) and the simulated provider
otherwise, which only a policy with ``allow_simulated`` accepts: on a production policy a machine without
a TEE is refused, never silently downgraded.
"""

from __future__ import annotations

from pathlib import Path

from attest.errors import AttestError
from attest.tee.configfs import ConfigfsTsmProvider
from attest.tee.detect import read_collateral_dir
from attest.tee.evidence import ReplayProvider
from attest.tee.gate import EvidenceProvider
from attest.tee.simulated import SimulatedProvider

__all__ = ["PROVIDERS", "choose_provider"]

PROVIDERS = ("auto", "configfs-tsm", "simulated", "replay")


def choose_provider(name: str, *, evidence: Path | None = None, collateral: Path | None = None) -> EvidenceProvider:
    """The provider ``name``; ``collateral`` adds certificates and collateral to what the TEE returns."""
    if name not in PROVIDERS:
        raise AttestError(f"the TEE provider must be one of {', '.join(PROVIDERS)}, not {name!r}")
    if name == "replay":
        if evidence is None:
            raise AttestError("the replay provider needs an evidence file")
        return ReplayProvider(evidence)
    if evidence is not None:
        raise AttestError("an evidence file is only for the replay provider")
    if name == "auto":
        name = "configfs-tsm" if ConfigfsTsmProvider.available() else "simulated"
    if name == "simulated":
        if collateral is not None:
            raise AttestError("the simulated provider takes no collateral")
        return SimulatedProvider()
    return ConfigfsTsmProvider(extra=read_collateral_dir(collateral) if collateral else None)
