"""Alembic environment for the audit database; run programmatically by ``gateway.audit.db.open_database``.

The caller passes the connection (``config.attributes["connection"]``), so migrations run in the
caller's transaction. On PostgreSQL an advisory lock serialises gateways that start together on an
empty database.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from gateway.audit.models import Base

_PG_MIGRATION_LOCK = 0x6D6F64656C676174  # "modelgat"


def run() -> None:
    connection = context.config.attributes["connection"]
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=context.config.attributes["version_table"],
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run()
