"""in-toto Statements v1 that name every file of a model, in modelgate's and in OpenSSF's shape.

modelgate's statement has one subject per file (name = relative path, digest = sha256) and the
CycloneDX ML-BOM as predicate, so any in-toto tool can check a single file against it. The OpenSSF
model-signing statement (``--format oms``) has one subject for the whole model whose digest is the
sha256 over the file digests in name order, with the per-file digests in the predicate. Both parse
into one ``SignedManifest``: the files and digests that a signer vouched for.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from attest.dsse import IN_TOTO_PAYLOAD_TYPE
from attest.errors import BundleFormatError
from attest.strict_json import loads_strict
from sbom.errors import UnsafePathError
from sbom.hashing import FileDigest
from sbom.inventory import check_relative_name

__all__ = [
    "CYCLONEDX_PREDICATE",
    "IN_TOTO_PAYLOAD_TYPE",
    "OMS_PREDICATE",
    "SignedManifest",
    "modelgate_statement",
    "oms_statement",
    "parse_statement",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
CYCLONEDX_PREDICATE = "https://cyclonedx.org/bom"
OMS_PREDICATE = "https://model_signing/signature/v1.0"

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_MAX_SUBJECTS = 100_000
_MAX_STATEMENT_BYTES = 64 << 20


@dataclass(frozen=True, slots=True)
class SignedManifest:
    """The files a signer vouched for, whatever statement shape carried them."""

    format: Literal["modelgate", "oms"]
    model_name: str | None
    files: Mapping[str, str]
    """Relative path -> sha256 hex, for every signed file."""
    predicate_type: str
    bom: dict[str, Any] | None = None
    """The CycloneDX ML-BOM, for modelgate statements."""
    signer_ignored: tuple[str, ...] = field(default=())
    """Paths the signer left out when signing (OpenSSF statements record them)."""

    @property
    def digest(self) -> str:
        """sha256 of the sorted (path, digest) list: one value that names this exact set of files."""
        lines = "".join(f"{d}  {p}\n" for p, d in sorted(self.files.items()))
        return hashlib.sha256(lines.encode()).hexdigest()


def modelgate_statement(digests: Mapping[str, FileDigest], bom: Mapping[str, Any]) -> bytes:
    """The statement modelgate signs: every file a subject, the ML-BOM the predicate."""
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": p, "digest": {"sha256": d.sha256}} for p, d in sorted(digests.items())],
        "predicateType": CYCLONEDX_PREDICATE,
        "predicate": bom,
    }
    return _canonical(statement)


def oms_statement(model_name: str, digests: Mapping[str, FileDigest], ignore_paths: tuple[str, ...]) -> bytes:
    """A statement in the OpenSSF model-signing v1.0 shape (``serialization.method = files``)."""
    ordered = sorted(digests.items())
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": _oms_root([d.sha256 for _, d in ordered])}}],
        "predicateType": OMS_PREDICATE,
        "predicate": {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": False,
                "ignore_paths": sorted(ignore_paths),
            },
            "resources": [{"name": p, "algorithm": "sha256", "digest": d.sha256} for p, d in ordered],
        },
    }
    return _canonical(statement)


def parse_statement(payload: bytes) -> SignedManifest:
    """Read a signed statement strictly; every file name must be safe and every digest well formed."""
    document = _json_object(payload)
    if document.get("_type") != STATEMENT_TYPE:
        raise BundleFormatError(f"payload is not an in-toto Statement v1 (_type {document.get('_type')!r})")
    predicate_type = document.get("predicateType")
    subjects = document.get("subject")
    if not isinstance(subjects, list) or not subjects or len(subjects) > _MAX_SUBJECTS:
        raise BundleFormatError("statement must have between 1 and 100000 subjects")
    if predicate_type == CYCLONEDX_PREDICATE:
        return _parse_modelgate(subjects, document.get("predicate"))
    if predicate_type == OMS_PREDICATE:
        return _parse_oms(subjects, document.get("predicate"))
    raise BundleFormatError(f"unsupported predicateType {predicate_type!r}")


def _parse_modelgate(subjects: list[Any], predicate: Any) -> SignedManifest:
    files: dict[str, str] = {}
    for subject in subjects:
        if not isinstance(subject, dict) or not isinstance(subject.get("digest"), dict):
            raise BundleFormatError("every subject needs a name and a digest")
        _add_file(files, subject.get("name"), subject["digest"].get("sha256"))
    if not isinstance(predicate, dict):
        raise BundleFormatError("the CycloneDX predicate must be a JSON object")
    return SignedManifest("modelgate", None, files, CYCLONEDX_PREDICATE, bom=predicate)


def _parse_oms(subjects: list[Any], predicate: Any) -> SignedManifest:
    if len(subjects) != 1 or not isinstance(subjects[0], dict) or not isinstance(subjects[0].get("digest"), dict):
        raise BundleFormatError("an OpenSSF model-signing statement has exactly one subject with a digest")
    if not isinstance(predicate, dict) or not isinstance(predicate.get("resources"), list):
        raise BundleFormatError("the model-signing predicate has no resources list")
    serialization = predicate.get("serialization")
    if not isinstance(serialization, dict) or serialization.get("method") != "files":
        raise BundleFormatError("only model-signing's 'files' serialization is supported (not shards)")
    if serialization.get("hash_type") != "sha256" or serialization.get("allow_symlinks") not in (False, None):
        raise BundleFormatError("model-signing serialization must use sha256 and forbid symlinks")
    files: dict[str, str] = {}
    for resource in predicate["resources"]:
        if not isinstance(resource, dict) or resource.get("algorithm") != "sha256":
            raise BundleFormatError("every model-signing resource needs a name and a sha256 digest")
        _add_file(files, resource.get("name"), resource.get("digest"))
    root = subjects[0]["digest"].get("sha256")
    if root != _oms_root([files[p] for p in sorted(files)]):
        raise BundleFormatError("model-signing statement is inconsistent: the subject digest is not over its resources")
    ignored = serialization.get("ignore_paths") or []
    if not isinstance(ignored, list) or not all(isinstance(p, str) for p in ignored):
        raise BundleFormatError("model-signing ignore_paths must be a list of strings")
    name = subjects[0].get("name")
    return SignedManifest("oms", name if isinstance(name, str) else None, files, OMS_PREDICATE,
                          signer_ignored=tuple(ignored))


def _add_file(files: dict[str, str], name: Any, digest: Any) -> None:
    if not isinstance(name, str):
        raise BundleFormatError("a signed file name is not a string")
    try:
        check_relative_name(name)
    except UnsafePathError as exc:
        raise BundleFormatError(f"unsafe file name in the signed statement: {exc.reason}") from exc
    if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
        raise BundleFormatError(f"{name}: signed digest is not a lowercase sha256 hex string")
    if name in files:
        raise BundleFormatError(f"{name}: named twice in the signed statement")
    files[name] = digest


def _oms_root(hex_digests: list[str]) -> str:
    return hashlib.sha256(b"".join(bytes.fromhex(d) for d in hex_digests)).hexdigest()


def _json_object(payload: bytes) -> dict[str, Any]:
    document = loads_strict(payload, "statement", max_bytes=_MAX_STATEMENT_BYTES)
    if not isinstance(document, dict):
        raise BundleFormatError("statement must be a JSON object")
    return document


def _canonical(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
