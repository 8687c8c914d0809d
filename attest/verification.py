"""Verifying a model against a signed bundle and a policy.

The order is: the signature (who vouched, at what time), the statement (which files, which digests),
the policy (SBOM, weight formats), and only then the bytes on disk: the set of files first, which needs
no reading, then the format firewall, then the digests. The first problem ends verification with a
reason that names the file; nothing is returned that did not pass every check.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from attest.bundle import SignerInfo, verify_bundle
from attest.bundle_format import MAX_BUNDLE_BYTES
from attest.errors import AttestError, BundleFormatError, PolicyViolation, SubjectMismatchError
from attest.statement import IN_TOTO_PAYLOAD_TYPE, SignedManifest, parse_statement
from attest.trust import TrustAnchors
from policies.schema import Policy
from sbom.bom import bom_file_digests, load_bom
from sbom.errors import BomError, MalformedFileError, RefusedFormatError, UnsafePathError
from sbom.fileio import DocumentTooLarge, read_capped
from sbom.formats import FileFormat, detect_format
from sbom.hashing import FileDigest, hash_files
from sbom.inventory import ModelTree, scan_model

__all__ = [
    "Verified",
    "admit_format",
    "check_digests",
    "read_bundle",
    "scan_signed_model",
    "verify_model",
    "verify_statement",
]

_WEIGHT_FORMATS = {FileFormat.SAFETENSORS, FileFormat.GGUF}


@dataclass(frozen=True, slots=True)
class Verified:
    """A model whose every file matched a trusted signature under a policy."""

    model: Path
    manifest: SignedManifest
    signer: SignerInfo
    policy: str
    total_bytes: int
    formats: dict[str, FileFormat]

    def to_json(self) -> dict[str, Any]:
        bom = self.manifest.bom or {}
        return {
            "verified": True,
            "model": str(self.model),
            "format": self.manifest.format,
            "predicateType": self.manifest.predicate_type,
            "policy": self.policy,
            "signer": self.signer.to_json(),
            "files": len(self.manifest.files),
            "bytes": self.total_bytes,
            "manifest_digest": self.manifest.digest,
            "sbom_serial": bom.get("serialNumber"),
            "subjects": [
                {"name": p, "sha256": d, "format": str(self.formats[p])} for p, d in sorted(self.manifest.files.items())
            ],
        }


def read_bundle(path: Path) -> bytes:
    """The bundle's bytes, refusing anything too large to be a bundle."""
    try:
        return read_capped(path, MAX_BUNDLE_BYTES)
    except DocumentTooLarge as exc:
        raise BundleFormatError(str(exc)) from None
    except OSError as exc:
        raise AttestError(f"cannot read bundle {path}: {exc.strerror or exc}") from exc


def verify_model(
    model: Path,
    bundle: bytes,
    anchors: TrustAnchors,
    policy: Policy,
    *,
    at: datetime | None = None,
    ignore: Iterable[str | Path] = (),
    progress: Callable[[int], None] | None = None,
) -> Verified:
    """Verify ``model`` against ``bundle`` under ``policy``; raises a VerificationError on any failure."""
    manifest, signer = verify_statement(bundle, anchors, policy, at=at)
    tree = scan_signed_model(model, manifest, ignore)
    formats = {f.path: admit_format(lambda f=f: detect_format(tree.root / f.path, f.path), f.path, policy)
               for f in tree.files}
    check_digests(manifest, hash_files(tree.root, tree.files, progress=progress))
    return Verified(model, manifest, signer, policy.name, tree.total_size, formats)


def verify_statement(
    bundle: bytes, anchors: TrustAnchors, policy: Policy, *, at: datetime | None = None
) -> tuple[SignedManifest, SignerInfo]:
    """The first phase: who signed, which files and digests they vouched for, and the policy's SBOM rule."""
    envelope = verify_bundle(bundle, anchors, at=at)
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise BundleFormatError(f"signed payload type is {envelope.payload_type!r}, not an in-toto statement")
    manifest = parse_statement(envelope.payload)
    _check_sbom(manifest, policy)
    return manifest, envelope.signer


def scan_signed_model(model: Path, manifest: SignedManifest, ignore: Iterable[str | Path] = ()) -> ModelTree:
    """The model's files, which must be exactly the signed ones (read nothing but names and sizes)."""
    try:
        tree = scan_model(model, ignore)
    except UnsafePathError as exc:
        raise SubjectMismatchError(exc.path, exc.reason.removeprefix(f"{exc.path}: ")) from exc
    _check_file_set(tree, manifest)
    return tree


def admit_format(detect: Callable[[], FileFormat], name: str, policy: Policy) -> FileFormat:
    """Run the format firewall (on a file or on verified bytes) and apply the policy's weight formats."""
    try:
        kind = detect()
    except (RefusedFormatError, MalformedFileError, UnsafePathError) as exc:
        raise PolicyViolation(exc.reason) from exc
    if kind in _WEIGHT_FORMATS and kind.value not in policy.trust.allowed_weight_formats:
        raise PolicyViolation(f"{name}: {kind.value} weights are not allowed by policy '{policy.name}'")
    return kind


def check_digests(manifest: SignedManifest, digests: Mapping[str, FileDigest]) -> None:
    """Every signed file's bytes have the signed sha256."""
    for path, signed in sorted(manifest.files.items()):
        if digests[path].sha256 != signed:
            raise SubjectMismatchError(
                path, f"content differs from the signed file (signed sha256 {signed}, found {digests[path].sha256})"
            )


def _check_sbom(manifest: SignedManifest, policy: Policy) -> None:
    if manifest.bom is None:
        if policy.trust.require_sbom:
            raise PolicyViolation(
                f"policy '{policy.name}' requires a CycloneDX SBOM, but the bundle's predicate is "
                f"{manifest.predicate_type}; sign with `modelgate sign` (default format)"
            )
        return
    try:
        load_bom(json.dumps(manifest.bom).encode(), "signed SBOM")
    except BomError as exc:
        raise BundleFormatError(f"the signed SBOM is not a valid CycloneDX document: {exc.reason}") from exc
    for path, digest in bom_file_digests(manifest.bom).items():
        if manifest.files.get(path) != digest:
            raise BundleFormatError(f"{path}: the signed SBOM and the signed subjects disagree")


def _check_file_set(tree: ModelTree, manifest: SignedManifest) -> None:
    on_disk = {f.path for f in tree.files}
    signed = set(manifest.files)
    missing, extra = sorted(signed - on_disk), sorted(on_disk - signed)
    if not missing and not extra:
        return
    if extra:
        extra_digests = hash_files(tree.root, [f for f in tree.files if f.path in extra])
        by_digest = {manifest.files[p]: p for p in missing}
        for path in extra:
            if (was := by_digest.get(extra_digests[path].sha256)) is not None:
                raise SubjectMismatchError(path, f"renamed: this file was signed as {was}")
        path = extra[0]
        hint = (
            "; the signer excluded it when signing: pass --ignore-paths to skip it"
            if _matches(path, manifest.signer_ignored)
            else ""
        )
        raise SubjectMismatchError(path, f"not signed: the file is not in the bundle{hint}")
    raise SubjectMismatchError(missing[0], "missing: the file is signed but not in the model")


def _matches(path: str, patterns: Iterable[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in patterns)
