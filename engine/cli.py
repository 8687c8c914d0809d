"""Commands of the engine package: models fetch."""

import typer


def register(app: typer.Typer) -> None:
    """Mount this package's commands on the root app."""
