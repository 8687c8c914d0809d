"""Commands of the sbom package: sbom."""

import typer


def register(app: typer.Typer) -> None:
    """Mount this package's commands on the root app."""
