"""Fixtures for every gateway test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway.postgres import dedicated_database


@pytest.fixture()
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of the test's own (its name), dropped afterwards; a skip when there is no server."""
    with dedicated_database() as name:
        yield name
