"""The CycloneDX ML-BOM of a model: written as plain JSON, checked against the official schema.

cyclonedx-python-lib's object model drops the model card and the compositions, so the document is
built as dicts and then validated with the library's strict JSON-schema validator; a document that
fails is an error, never output. The model is the one top-level component, with its model card and
one nested ``file`` component per file (both digests, size, format, roles), and a composition says
that list is complete; ``metadata.component`` names the model as the BOM's subject. Apart from the
serial number and timestamp, the same model always gives the same bytes.

BOMs read back (``load_bom``) are untrusted: size-capped, strictly parsed and validated against the
schema of the spec version they claim.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cyclonedx.schema import SchemaVersion
from cyclonedx.spdx import fixup_id, is_expression

if TYPE_CHECKING:
    from cyclonedx.validation.json import JsonStrictValidator

from sbom.errors import BomError, MalformedFileError, UnsafePathError
from sbom.fileio import DocumentTooLarge, read_capped, write_atomically
from sbom.formats import FileFormat, detect_format
from sbom.hashing import FileDigest
from sbom.inventory import ModelFile, ModelTree, check_relative_name
from sbom.modelcard import ModelFacts, extract_facts, load_json
from sbom.roles import Role, file_roles

__all__ = [
    "SPEC_VERSION",
    "BomOptions",
    "bom_file_digests",
    "build_bom",
    "describe_model",
    "load_bom",
    "render_bom",
    "write_bom",
]

SPEC_VERSION = "1.6"
_READABLE = {"1.5": SchemaVersion.V1_5, "1.6": SchemaVersion.V1_6, "1.7": SchemaVersion.V1_7}
_MAX_BOM_BYTES = 32 << 20
_MODEL_REF = "model"

# ModelFacts field -> the model card property that states it (CycloneDX has no field for these).
_FACT_PROPERTIES = (
    ("parameter_count", "modelgate:parameter-count"),
    ("quantization", "modelgate:quantization"),
    ("dtype", "modelgate:dtype"),
    ("context_length", "modelgate:context-length"),
    ("vocab_size", "modelgate:vocabulary-size"),
    ("hidden_size", "modelgate:hidden-size"),
    ("layers", "modelgate:layers"),
    ("heads", "modelgate:attention-heads"),
    ("kv_heads", "modelgate:key-value-heads"),
    ("name", "modelgate:declared-name"),
)


@dataclass(frozen=True, slots=True)
class BomOptions:
    """What only the publisher can say about a model; each overrides what the model declares."""

    supplier: str | None = None
    """The organisation that supplies the model."""
    author: str | None = None
    version: str | None = None
    license: str | None = None
    """An SPDX licence identifier or expression, or the name of another licence."""
    base_model: str | None = None
    """The model this one was fine-tuned, quantized or converted from."""


def describe_model(tree: ModelTree) -> tuple[dict[str, FileFormat], ModelFacts]:
    """Detect every file's format (refusing code-carrying ones) and read what the model declares."""
    formats = {f.path: detect_format(tree.root / f.path, f.path) for f in tree.files}
    return formats, extract_facts(tree, formats)


def build_bom(
    tree: ModelTree,
    digests: Mapping[str, FileDigest],
    formats: Mapping[str, FileFormat],
    facts: ModelFacts,
    options: BomOptions,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    """The ML-BOM of ``tree``; ``digests`` must hold SHA-256 and SHA-512 for exactly its files."""
    if set(digests) != {f.path for f in tree.files}:
        raise BomError("the digests do not cover exactly the model's files; hash the same tree")
    subject: dict[str, Any] = {"type": "machine-learning-model", "name": tree.name}
    if options.version:
        subject["version"] = options.version
    if options.supplier:
        subject["supplier"] = {"name": options.supplier}
    if options.author:
        subject["authors"] = [{"name": options.author}]
    model = subject | {"bom-ref": _MODEL_REF}
    if licence := options.license or facts.license:
        model["licenses"] = _licenses(licence)
    if bases := (options.base_model,) if options.base_model else facts.base_models:
        model["pedigree"] = {"ancestors": [{"type": "machine-learning-model", "name": b} for b in bases]}
    model["modelCard"] = _model_card(facts)
    model["components"] = [
        _file_component(f, digests[f.path], formats[f.path], facts.roles.get(f.path)) for f in tree.files
    ]
    moment = (timestamp or datetime.now(UTC)).astimezone(UTC)
    bom = {
        "$schema": f"http://cyclonedx.org/schema/bom-{SPEC_VERSION}.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "tools": {"components": [{"type": "application", "name": "modelgate", "version": _own_version()}]},
            "component": subject,
        },
        "components": [model],
        "compositions": [{"aggregate": "complete", "assemblies": [_MODEL_REF]}],
    }
    _validate(bom, SchemaVersion.V1_6, "the generated BOM")
    return bom


def render_bom(bom: Mapping[str, Any]) -> bytes:
    """Canonical bytes: sorted keys, two-space indent, UTF-8, a final newline; diffable between runs."""
    return (json.dumps(bom, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def write_bom(bom: Mapping[str, Any], output: Path) -> None:
    """Write atomically (temporary file, then rename), so no reader ever sees half a BOM."""
    try:
        write_atomically(output, render_bom(bom))
    except OSError as exc:
        raise BomError(f"cannot write {output}: {exc.strerror or exc}") from exc


def read_bom(path: Path) -> dict[str, Any]:
    """Read and validate a CycloneDX file (see ``load_bom``)."""
    try:
        return load_bom(read_capped(path, _MAX_BOM_BYTES), str(path))
    except DocumentTooLarge:
        raise BomError(f"{path}: larger than {_MAX_BOM_BYTES >> 20} MiB; not read") from None
    except OSError as exc:
        raise BomError(f"cannot read {path}: {exc.strerror or exc}") from exc


def load_bom(data: bytes, name: str) -> dict[str, Any]:
    """Read a CycloneDX 1.5, 1.6 or 1.7 JSON document, valid under the schema of its own version."""
    if len(data) > _MAX_BOM_BYTES:
        raise BomError(f"{name}: larger than {_MAX_BOM_BYTES >> 20} MiB; not read")
    try:
        bom = load_json(data, name)
    except MalformedFileError as exc:
        raise BomError(exc.reason) from exc
    if not isinstance(bom, dict) or bom.get("bomFormat") != "CycloneDX":
        raise BomError(f"{name}: not a CycloneDX document (bomFormat is not 'CycloneDX')")
    spec = bom.get("specVersion")
    if not isinstance(spec, str) or spec not in _READABLE:
        raise BomError(f"{name}: CycloneDX specVersion {str(spec)[:20]!r} is not supported; use 1.5, 1.6 or 1.7")
    _validate(bom, _READABLE[spec], name)
    return bom


def bom_file_digests(bom: Mapping[str, Any]) -> dict[str, str]:
    """``{relative path: sha256}`` for the ``file`` components of a loaded BOM that carry a SHA-256.

    The names are checked as hostile input (they are compared with signed subjects), and a path listed
    twice, or with two different SHA-256 values, is refused rather than resolved either way.
    """
    found: dict[str, str] = {}
    metadata = bom.get("metadata", {})
    stack = [*bom.get("components", []), *([metadata["component"]] if "component" in metadata else [])]
    while stack:
        component = stack.pop()
        stack.extend(component.get("components", []))
        sha256 = {h["content"].lower() for h in component.get("hashes", []) if h["alg"] == "SHA-256"}
        if component.get("type") != "file" or not sha256:
            continue
        path = component["name"]
        try:
            check_relative_name(path)
        except UnsafePathError as exc:
            raise BomError(f"the BOM lists an unsafe file name: {exc.reason}") from exc
        if path in found or len(sha256) != 1 or len(digest := sha256.pop()) != 64:
            raise BomError(f"the BOM lists {path} twice or with an ambiguous SHA-256")
        found[path] = digest
    return found


def _file_component(
    f: ModelFile, digest: FileDigest, fmt: FileFormat, roles: tuple[Role, ...] | None
) -> dict[str, Any]:
    if digest.sha512 is None or digest.size != f.size:
        raise BomError(f"{f.path}: no SHA-512 or a different size in the digests; hash with sha512=True")
    properties = [("modelgate:format", str(fmt))]
    properties += [("modelgate:role", str(r)) for r in roles or file_roles(f.path, fmt)]
    properties.append(("modelgate:size", str(f.size)))
    return {
        "type": "file",
        "bom-ref": f"file:{f.path}",
        "name": f.path,
        "hashes": [{"alg": "SHA-256", "content": digest.sha256}, {"alg": "SHA-512", "content": digest.sha512}],
        "properties": [{"name": n, "value": v} for n, v in properties],
    }


def _model_card(facts: ModelFacts) -> dict[str, Any]:
    card: dict[str, Any] = {}
    stated = (("task", facts.task), ("architectureFamily", facts.family), ("modelArchitecture", facts.architecture))
    if parameters := {key: value for key, value in stated if value}:
        card["modelParameters"] = parameters
    if properties := [
        {"name": prop, "value": str(value)}
        for attr, prop in _FACT_PROPERTIES
        if (value := getattr(facts, attr)) is not None
    ]:
        card["properties"] = properties
    return card


def _licenses(licence: str) -> list[dict[str, Any]]:
    """An SPDX id (case fixed), else an SPDX expression, else a named licence such as ``llama3``."""
    if spdx_id := fixup_id(licence):
        return [{"license": {"id": spdx_id}}]
    if " " in licence.strip() and is_expression(licence):
        return [{"expression": licence}]
    return [{"license": {"name": licence}}]


def _validate(bom: Mapping[str, Any], schema: SchemaVersion, name: str) -> None:
    try:
        error = _validator(schema).validate_str(json.dumps(bom))
    except RecursionError as exc:
        raise BomError(f"{name}: nested too deeply to validate") from exc
    if error is not None:
        where = "/".join(str(p) for p in error.data.absolute_path) or "the top level"
        raise BomError(f"{name}: not valid CycloneDX {schema.to_version()}: at {where}: {error.data.message[:200]}")


@cache
def _validator(schema: SchemaVersion) -> JsonStrictValidator:
    # Imported here: the validator pulls in jsonschema's format checkers, about 1.5 s of start-up that
    # every command would otherwise pay, even those that never validate a BOM.
    from cyclonedx.validation.json import JsonStrictValidator

    return JsonStrictValidator(schema)


@cache
def _own_version() -> str:
    try:
        return package_version("modelgate")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0"
