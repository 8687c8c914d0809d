"""Signing a model: inventory, format firewall, hashing, statement, signature.

Nothing is signed that modelgate would refuse to load: every file passes the format firewall first,
and a supplied SBOM must describe exactly the files being signed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from attest.bundle import Signer
from attest.errors import AttestError
from attest.statement import IN_TOTO_PAYLOAD_TYPE, SignedManifest, modelgate_statement, oms_statement, parse_statement
from sbom.bom import BomOptions, bom_file_digests, build_bom, describe_model
from sbom.errors import BomError
from sbom.fileio import write_atomically
from sbom.formats import detect_format
from sbom.hashing import FileDigest, hash_files
from sbom.inventory import DEFAULT_IGNORES, ModelTree, scan_model

__all__ = ["SignOutcome", "SignatureFormat", "sign_model", "write_bundle"]

SignatureFormat = Literal["modelgate", "oms"]


@dataclass(frozen=True, slots=True)
class SignOutcome:
    """A signed model: the bundle to write and what it vouches for."""

    bundle: dict[str, Any]
    manifest: SignedManifest
    total_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.manifest.format,
            "predicateType": self.manifest.predicate_type,
            "files": len(self.manifest.files),
            "bytes": self.total_bytes,
            "manifest_digest": self.manifest.digest,
        }


def sign_model(
    model: Path,
    signer: Signer,
    *,
    format: SignatureFormat = "modelgate",
    bom: dict[str, Any] | None = None,
    bom_options: BomOptions | None = None,
    ignore: Iterable[str | Path] = (),
    progress: Callable[[int], None] | None = None,
) -> SignOutcome:
    """Sign every file of ``model``; ``bom`` is an SBOM loaded with ``sbom.bom.load_bom``, else one is built."""
    ignore = tuple(ignore)
    tree = scan_model(model, ignore)
    if format == "oms":
        for f in tree.files:
            detect_format(tree.root / f.path, f.path)
        digests = hash_files(tree.root, tree.files, progress=progress)
        payload = oms_statement(tree.name, digests, _oms_ignore_list(tree, ignore))
    else:
        formats, facts = describe_model(tree)
        digests = hash_files(tree.root, tree.files, sha512=True, progress=progress)
        if bom is None:
            bom = build_bom(tree, digests, formats, facts, bom_options or BomOptions())
        else:
            _check_bom_matches(bom, digests)
        payload = modelgate_statement(digests, bom)
    bundle = signer.sign(IN_TOTO_PAYLOAD_TYPE, payload)
    return SignOutcome(bundle, parse_statement(payload), tree.total_size)


def _check_bom_matches(bom: dict[str, Any], digests: dict[str, FileDigest]) -> None:
    """A supplied SBOM that lists files must list exactly these files with these digests."""
    described = bom_file_digests(bom)
    if not described:
        return  # an SBOM without file components (e.g. a hand-written one) constrains nothing here
    for path in sorted(set(described) | set(digests)):
        if path not in digests:
            raise BomError(f"the SBOM lists {path}, which is not in the model")
        if path not in described:
            raise BomError(f"the SBOM does not list {path}; regenerate it with `modelgate sbom`")
        if described[path] != digests[path].sha256:
            raise BomError(f"the SBOM's sha256 for {path} differs from the file; regenerate it")


def _oms_ignore_list(tree: ModelTree, ignore: tuple[str | Path, ...]) -> tuple[str, ...]:
    """What the OpenSSF tool records as ignored: its git defaults plus the caller's paths."""
    names = set(DEFAULT_IGNORES)
    for item in ignore:
        p = Path(item)
        if p.is_absolute():
            try:
                p = p.relative_to(tree.root)
            except ValueError:
                continue
        names.add(p.as_posix())
    return tuple(sorted(names))


def write_bundle(bundle: dict[str, Any], output: Path) -> None:
    """Write the bundle JSON atomically: a reader never sees half a bundle."""
    try:
        write_atomically(output, (json.dumps(bundle, indent=2) + "\n").encode())
    except OSError as exc:
        raise AttestError(f"cannot write bundle {output}: {exc.strerror or exc}") from exc
