"""Commands of the attest package: keygen, sign, verify."""

import typer


def register(app: typer.Typer) -> None:
    """Mount this package's commands on the root app."""
