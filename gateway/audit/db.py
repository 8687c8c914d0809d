"""Opening the audit database: where it is, how durable a commit is, and the schema brought to head.

SQLite (the default, ``$MODELGATE_HOME/audit.db``) runs in WAL mode so that the review screens read
while the gateway writes, with ``synchronous=FULL``: a commit that returned survives a power cut, not
only a crash. ``NORMAL`` (durable against a crash of the process, not of the machine) is an explicit
choice. PostgreSQL is given by URL (``postgresql+psycopg://...``). Either way the schema is the one the
shipped Alembic migrations build, upgraded to head when the database is opened.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from gateway.audit.models import AuditMeta
from gateway.errors import AuditError, AuditUnavailable

__all__ = ["AuditDatabase", "Synchronous", "default_home", "default_url", "guarded_session", "open_database"]

Synchronous = Literal["FULL", "NORMAL"]

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_VERSION_TABLE = "modelgate_audit_version"
_BUSY_TIMEOUT_MS = 5000
_CONNECT_TIMEOUT_S = 5


def default_home() -> Path:
    """``$MODELGATE_HOME``, else ``~/.modelgate``: the gateway's state folder."""
    return Path(os.environ.get("MODELGATE_HOME") or Path.home() / ".modelgate")


def default_url(home: Path | None = None) -> str:
    return f"sqlite:///{(home or default_home()) / 'audit.db'}"


@dataclass(frozen=True)
class AuditDatabase:
    """An open audit database: its engine, a session factory and the id the database was created with."""

    engine: Engine
    sessions: sessionmaker[Session]
    database_id: str
    """Made by the first migration; a state folder binds to it, so a swapped database is noticed."""

    def close(self) -> None:
        self.engine.dispose()


def open_database(
    url: str | None = None, *, synchronous: Synchronous = "FULL", home: Path | None = None, migrate: bool = True,
) -> AuditDatabase:
    """Open ``url`` (default: the SQLite file in the state folder) and upgrade its schema to head.

    AuditError for a URL that is not a database modelgate can use; AuditUnavailable when it cannot be
    reached or written.
    """
    target = url or default_url(home)
    engine = _create_engine(target, synchronous)
    try:
        if migrate:
            with engine.begin() as connection:
                config = Config()
                config.set_main_option("script_location", str(_MIGRATIONS))
                config.attributes["connection"] = connection
                config.attributes["version_table"] = _VERSION_TABLE
                command.upgrade(config, "head")
        with Session(engine) as session:
            database_id = session.scalar(select(AuditMeta.value).where(AuditMeta.key == "database_id"))
    except SQLAlchemyError as exc:
        engine.dispose()
        raise AuditUnavailable(f"cannot open the audit database {_shown(target)}: {_first_line(exc)}") from exc
    if database_id is None:
        engine.dispose()
        raise AuditError(f"{_shown(target)} is not a modelgate audit database (no database id)")
    return AuditDatabase(engine, sessionmaker(engine, expire_on_commit=False), database_id)


@contextmanager
def guarded_session(db: AuditDatabase, what: str, *,
                    passing: tuple[type[SQLAlchemyError], ...] = ()) -> Iterator[Session]:
    """A session of ``db`` whose database errors (but ``passing``) become ``AuditUnavailable("<what> cannot be
    used: ...")``: state beside the log (pins, held calls) fails closed like the log itself."""
    try:
        with db.sessions() as session:
            yield session
    except SQLAlchemyError as exc:
        if isinstance(exc, passing):
            raise
        raise AuditUnavailable(f"{what} cannot be used: {_first_line(exc)}") from exc


def _create_engine(url: str, synchronous: Synchronous) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise AuditError(f"{url!r} is not a database URL (sqlite:///PATH or postgresql+psycopg://...)") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise AuditError("the audit database must be a file: an in-memory database loses every record")
        if not parsed.query.get("uri"):  # a file: URI (mode=ro, ...) names an existing file
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = create_engine(parsed, connect_args={"timeout": _BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas(synchronous))
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            raise AuditError(f"use the psycopg driver for PostgreSQL: postgresql+psycopg://... (not {url!r})")
        # A server that stops answering must fail commits (503), not hang the writer: TCP keepalives.
        return create_engine(parsed, connect_args={"connect_timeout": _CONNECT_TIMEOUT_S, "keepalives": 1,
                                                   "keepalives_idle": 5, "keepalives_interval": 2,
                                                   "keepalives_count": 2})
    raise AuditError(f"unsupported audit database {backend!r}: use sqlite:///PATH or postgresql+psycopg://...")


def _sqlite_pragmas(synchronous: Synchronous) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {synchronous}")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    return on_connect


def _shown(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return repr(url)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
