"""The ``modelgate`` command: mounts every package's commands and maps errors to exit codes once."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

import typer
from rich.console import Console

import attest.cli
import engine.cli
import gateway.admin.cli
import gateway.cli
import gateway.evaluation.cli
import sbom.cli
from modelgate import __version__
from policies.errors import ModelgateError

__all__ = ["app", "main"]

app = typer.Typer(
    name="modelgate",
    help="Model provenance and security gateway: signed and attested models, audited agent traffic.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"modelgate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Model provenance and security gateway."""


for _register in (sbom.cli.register, attest.cli.register, engine.cli.register, gateway.cli.register,
                  gateway.evaluation.cli.register, gateway.admin.cli.register):
    _register(app)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns (and, as a script, exits with) the exit code.

    Click reports usage errors itself (exit 2); modelgate's own errors carry their exit code.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app(args=args, prog_name="modelgate")
        rc = 0
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except ModelgateError as exc:
        _report_error(exc, as_json="--json" in args)
        rc = exc.exit_code
    if argv is None:
        sys.exit(rc)
    return rc


def _report_error(exc: ModelgateError, *, as_json: bool) -> None:
    label = "verification failed" if exc.exit_code == 1 else "error"
    if as_json:
        typer.echo(json.dumps({"ok": False, "error": type(exc).__name__, "reason": exc.reason}, indent=2))
    else:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]{label}:[/] {exc.reason}", markup=True)
