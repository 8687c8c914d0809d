"""Loading a model's bytes only after they verify: the signed statement, the policy, every digest, the TEE.

Each file is read once into memory and hashed as it is read, and only that memory is handed to the
parsers, so the bytes that were verified are the bytes that are loaded: nothing that happens to the files
afterwards (a swap, a rewrite, a symlink) can reach the model. Last, TEE evidence bound to the verified
manifest and the engine's identity key must satisfy the policy's ``attestation`` section. The outcome,
loaded or refused, is a ``LoadRecord`` for the audit log, with the attestation verdict and evidence and
a summary of the signed SBOM (once the signature is verified: an unverified BOM says nothing).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from attest.errors import VerificationError
from attest.result import SignerInfo
from attest.statement import SignedManifest
from attest.tee.appraisal import AttestationVerdict
from attest.tee.gate import EvidenceProvider, attest_load
from attest.trust import TrustAnchors
from attest.verification import admit_format, check_digests, scan_signed_model, verify_statement
from engine.errors import LoadRefused
from engine.identity import EngineIdentity
from policies.schema import Policy
from sbom.formats import FileFormat, detect_format_of
from sbom.hashing import read_files
from sbom.summary import BomSummary, summarize_bom

__all__ = ["LoadRecord", "VerifiedArtifact", "load_verified"]


@dataclass(frozen=True, slots=True)
class LoadRecord:
    """What the audit log keeps about one attempt to load a model."""

    model: str
    policy: str
    decision: Literal["loaded", "refused"]
    at: datetime
    reason: str | None = None
    signer: SignerInfo | None = None
    manifest_digest: str | None = None
    files: Mapping[str, str] = field(default_factory=dict)
    """Relative path -> sha256 of every loaded file."""
    total_bytes: int = 0
    timings: Mapping[str, float] = field(default_factory=dict)
    """Seconds spent on: signature (bundle and statement), read_and_hash, firewall, attestation."""
    attestation: AttestationVerdict | None = None
    """The TEE verdict, with the evidence bundle it judged (None when the load failed before it)."""
    sbom: BomSummary | None = None
    """The signed ML-BOM in brief (None: the statement carries none, or its signature did not verify)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "policy": self.policy,
            "decision": self.decision,
            "at": self.at.isoformat(),
            "reason": self.reason,
            "signer": self.signer.to_json() if self.signer else None,
            "manifest_digest": self.manifest_digest,
            "files": dict(self.files),
            "bytes": self.total_bytes,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "attestation": self.attestation.to_json() if self.attestation else None,
            "evidence": self.attestation.bundle.to_json() if self.attestation else None,
            "sbom": self.sbom.to_json() if self.sbom else None,
        }


@dataclass(frozen=True, slots=True)
class VerifiedArtifact:
    """The verified bytes of every file of a model, with what vouched for them."""

    files: Mapping[str, memoryview]
    """Relative path -> the exact bytes whose sha256 matched the signature (read-only views)."""
    formats: Mapping[str, FileFormat]
    manifest: SignedManifest
    record: LoadRecord
    identity: EngineIdentity
    """The key the attestation evidence binds: whoever serves these bytes must hold it."""


def load_verified(
    model: Path,
    bundle: bytes,
    anchors: TrustAnchors,
    policy: Policy,
    *,
    tee: EvidenceProvider,
    identity: EngineIdentity,
    at: datetime | None = None,
    ignore: Iterable[str | Path] = (),
    progress: Callable[[int], None] | None = None,
) -> VerifiedArtifact:
    """Verify and read ``model``, then attest it with ``tee``; LoadRefused, carrying the record, on any failure."""
    started, timings, verdict, summary = datetime.now(UTC), {}, None, None
    clock = time.perf_counter()
    try:
        manifest, signer = verify_statement(bundle, anchors, policy, at=at)
        summary = summarize_bom(manifest.bom) if manifest.bom is not None else None
        tree = scan_signed_model(model, manifest, ignore)
        timings["signature"] = time.perf_counter() - clock

        clock = time.perf_counter()
        loaded = read_files(tree.root, tree.files, progress=progress)
        check_digests(manifest, {path: digest for path, (digest, _) in loaded.items()})
        timings["read_and_hash"] = time.perf_counter() - clock

        clock = time.perf_counter()
        views = {path: memoryview(data).toreadonly() for path, (_, data) in loaded.items()}
        formats = {path: admit_format(lambda v=view, p=path: detect_format_of(v, p), path, policy)
                   for path, view in views.items()}
        timings["firewall"] = time.perf_counter() - clock

        clock = time.perf_counter()
        verdict = attest_load(manifest.digest, identity.public_der, tee, policy)
        timings["attestation"] = time.perf_counter() - clock
        verdict.require()
    except VerificationError as exc:
        refusal = LoadRecord(str(model), policy.name, "refused", started, reason=exc.reason, timings=timings,
                             attestation=verdict, sbom=summary)
        raise LoadRefused(refusal) from exc
    record = LoadRecord(
        model=str(model),
        policy=policy.name,
        decision="loaded",
        at=started,
        signer=signer,
        manifest_digest=manifest.digest,
        files=dict(manifest.files),
        total_bytes=tree.total_size,
        timings=timings,
        attestation=verdict,
        sbom=summary,
    )
    return VerifiedArtifact(views, formats, manifest, record, identity)
