"""Commands of the sbom package: ``sbom``. Parse, call the library, print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from sbom.bom import SPEC_VERSION, BomOptions, build_bom, describe_model, write_bom
from sbom.hashing import hash_files
from sbom.inventory import scan_model
from sbom.progress import byte_progress

__all__ = ["register"]


def sbom(
    model: Path = typer.Argument(..., help="Model folder (Hugging Face layout) or a single GGUF file."),
    output: Path = typer.Option(..., "-o", "--output", help="CycloneDX JSON file to write."),
    supplier: str | None = typer.Option(None, "--supplier", help="Organisation that supplies the model."),
    author: str | None = typer.Option(None, "--author", help="Person or organisation that made the model."),
    version: str | None = typer.Option(None, "--version", help="Version of the model."),
    licence: str | None = typer.Option(
        None, "--license", help="SPDX id or expression, or a licence name (default: what the model declares)."
    ),
    base_model: str | None = typer.Option(
        None, "--base-model", metavar="NAME", help="Model this one derives from (default: what the model declares)."
    ),
    ignore_paths: list[Path] = typer.Option(
        [], "--ignore-paths", metavar="PATH", help="Paths inside the model to leave out (repeatable)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary (no progress bar)."),
) -> None:
    """Write the CycloneDX ML-BOM of a model: every file with SHA-256 and SHA-512, its role, and a model card."""
    # A BOM written inside the model folder is not part of the model, now or when the command is run again.
    tree = scan_model(model, [*ignore_paths, output.absolute()])
    formats, facts = describe_model(tree)
    with byte_progress(tree.total_size, "hashing", enabled=not as_json) as progress:
        digests = hash_files(tree.root, tree.files, sha512=True, progress=progress)
    options = BomOptions(supplier=supplier, author=author, version=version, license=licence, base_model=base_model)
    bom = build_bom(tree, digests, formats, facts, options)
    write_bom(bom, output)
    summary: dict[str, Any] = {
        "ok": True,
        "output": str(output),
        "serialNumber": bom["serialNumber"],
        "model": tree.name,
        "files": len(tree.files),
        "bytes": tree.total_size,
        "facts": facts.summary(),
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    shown = {k.replace("_", " "): f"{v:,}" if isinstance(v, int) else v for k, v in summary["facts"].items()}
    stated = ", ".join(f"{key} {value}" for key, value in shown.items() if key != "base models")
    files = f"{len(tree.files)} file" + "s" * (len(tree.files) != 1)
    Console(highlight=False).print(
        f"[green]ok[/] wrote {escape(str(output))} (CycloneDX {SPEC_VERSION}, {summary['serialNumber']})\n"
        f"   {escape(tree.name)}: {files}, {tree.total_size / 1e9:.2f} GB\n"
        f"   {escape(stated or 'the model states no facts about itself')}",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Mount this package's commands on the root app."""
    app.command("sbom")(sbom)
