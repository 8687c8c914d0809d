"""An ML-BOM in a few facts: what a model-load record keeps of the SBOM its signature vouched for.

A reviewer looking at a model load wants to know what was loaded without opening the BOM: the model's
name and version, its licences, the weight formats, how many files, and which BOM that was (its serial
number, and the SHA-256 of the document as ``modelgate sbom`` writes it, so that a copy on disk can be
matched with ``sha256sum``). The BOM is read as untrusted JSON (it was validated against the schema,
but a summary must not fail on a field it does not expect): anything of the wrong type is left out.

    >>> summary = summarize_bom({"specVersion": "1.6", "serialNumber": "urn:uuid:1", "components": [
    ...     {"type": "machine-learning-model", "name": "smol", "licenses": [{"license": {"id": "Apache-2.0"}}]}]})
    >>> summary.name, summary.licenses, summary.files
    ('smol', ('Apache-2.0',), 0)
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sbom.bom import render_bom

__all__ = ["BomSummary", "summarize_bom"]

_MAX_TEXT = 256


@dataclass(frozen=True, slots=True)
class BomSummary:
    name: str | None
    """The model (``metadata.component``, else the first machine-learning-model component)."""
    version: str | None
    supplier: str | None
    licenses: tuple[str, ...]
    """SPDX ids, SPDX expressions or licence names, as the BOM states them."""
    architecture: str | None
    """The model card's architecture (``LlamaForCausalLM``), else its family."""
    parameters: str | None
    quantization: str | None
    formats: tuple[str, ...]
    """The distinct formats of the files (``modelgate:format``): safetensors, gguf, json, ..."""
    files: int
    """File components listed."""
    serial: str | None
    spec_version: str | None
    sha256: str
    """Of the BOM rendered as ``modelgate sbom`` writes it (canonical JSON)."""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "supplier": self.supplier,
                "licenses": list(self.licenses), "architecture": self.architecture, "parameters": self.parameters,
                "quantization": self.quantization, "formats": list(self.formats), "files": self.files,
                "serial": self.serial, "spec_version": self.spec_version, "sha256": self.sha256}


def summarize_bom(bom: Mapping[str, Any]) -> BomSummary:
    components = [c for c in _components(bom.get("components")) if isinstance(c, dict)]
    model = next((c for c in components if c.get("type") == "machine-learning-model"), {})
    metadata = bom.get("metadata") if isinstance(bom.get("metadata"), dict) else {}
    subject = metadata.get("component") if isinstance(metadata.get("component"), dict) else model
    card = model.get("modelCard") if isinstance(model.get("modelCard"), dict) else {}
    parameters = card.get("modelParameters") if isinstance(card.get("modelParameters"), dict) else {}
    facts = {p.get("name"): p.get("value") for p in _list(card.get("properties")) if isinstance(p, dict)}
    files = [c for c in components if c.get("type") == "file"]
    formats = {p.get("value") for c in files for p in _list(c.get("properties"))
               if isinstance(p, dict) and p.get("name") == "modelgate:format"}
    supplier = subject.get("supplier") if isinstance(subject.get("supplier"), dict) else {}
    return BomSummary(
        name=_text(subject.get("name")) or _text(model.get("name")),
        version=_text(subject.get("version")) or _text(model.get("version")),
        supplier=_text(supplier.get("name")),
        licenses=tuple(filter(None, (_licence(entry) for entry in _list(model.get("licenses"))))),
        architecture=_text(parameters.get("modelArchitecture")) or _text(parameters.get("architectureFamily")),
        parameters=_text(facts.get("modelgate:parameter-count")),
        quantization=_text(facts.get("modelgate:quantization")),
        formats=tuple(sorted(f for f in formats if isinstance(f, str))),
        files=len(files),
        serial=_text(bom.get("serialNumber")),
        spec_version=_text(bom.get("specVersion")),
        sha256=hashlib.sha256(render_bom(bom)).hexdigest(),
    )


def _components(value: Any) -> Iterator[Any]:
    """Every component, nested ones included (files sit under the model)."""
    stack = deque(_list(value))
    while stack:
        component = stack.popleft()
        yield component
        if isinstance(component, dict):
            stack.extend(_list(component.get("components")))


def _licence(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return None
    if "expression" in entry:
        return _text(entry["expression"])
    licence = entry.get("license")
    return (_text(licence.get("id")) or _text(licence.get("name"))) if isinstance(licence, dict) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return value[:_MAX_TEXT] if isinstance(value, str) and value else None
