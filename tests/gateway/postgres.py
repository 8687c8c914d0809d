"""PostgreSQL for gateway tests: the server from ``$MODELGATE_TEST_PG``, skipped with the reason when it is absent,
and databases of their own that a test may make unavailable or drop under a running gateway."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

__all__ = ["PG_SERVER", "database_url", "dedicated_database", "pg_admin"]

PG_SERVER = os.environ.get("MODELGATE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pg_admin() -> Engine:
    """An autocommit engine on the test server (CREATE/ALTER/DROP DATABASE), or a skip that names the server."""
    engine = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        engine.dispose()
        pytest.skip(f"PostgreSQL is not reachable at {PG_SERVER} (set MODELGATE_TEST_PG): {str(exc).splitlines()[0]}")
    return engine


def database_url(name: str) -> str:
    """The test server's URL with another database name."""
    return make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)


@contextmanager
def dedicated_database() -> Iterator[str]:
    """A new, empty database (its name), dropped afterwards even if a test left it closed to connections."""
    admin = pg_admin()
    name = f"mg_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
