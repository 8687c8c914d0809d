"""The audit writer's own connection: its statements rendered once, run by the DB-API driver.

SQLAlchemy Core spends about 100 µs of Python on every statement it executes (cache key, compiled-form
lookup, result set-up) and a commit runs half a dozen, which on the proxy's cores was a large share of
what a request cost. So the writer holds one driver connection for its lifetime, renders each statement
once per dialect from the models, and hands a whole batch to ``executemany``. Transactions are explicit:
on SQLite ``BEGIN IMMEDIATE`` takes the write lock before anything is read, so what a commit reads
(which request ids exist, which index rows are still there) cannot change before it writes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import Table, bindparam
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite

from gateway.audit.db import AuditDatabase
from gateway.audit.index import RESPONSE_COLUMNS
from gateway.audit.models import Body, Record, RequestIndex, RequestRule, RequestTool
from gateway.audit.pending import Row

__all__ = ["WriterConnection"]

_SQLITE_WRITER_PRAGMAS = (
    "PRAGMA temp_store = MEMORY",  # statement journals in memory, not a temporary file per statement
    "PRAGMA cache_size = -32768",  # 32 MiB: the request index's pages stay cached between commits
)

_SQLITE_NORMAL = 1


class WriterConnection:
    """One driver connection, opened on first use and dropped when the database fails (reopened next time)."""

    def __init__(self, db: AuditDatabase, *, pragmas: Sequence[str] = ()) -> None:
        self.db = db
        dialect = db.engine.dialect
        self.sqlite = dialect.name == "sqlite"
        rendering = sqlite.dialect(paramstyle="named") if self.sqlite else dialect
        insert = sqlite.insert if self.sqlite else postgresql.insert
        index = RequestIndex.__table__
        self._pragmas = (*_SQLITE_WRITER_PRAGMAS, *pragmas) if self.sqlite else ()
        self._insert_log = _render(Record.__table__.insert(), rendering, _keys(Record.__table__, skip="id"))
        self.insert_index = _render(index.insert(), rendering, _keys(index))
        self.update_index = _render(
            index.update().where(index.c.id == bindparam("row_id")), rendering, RESPONSE_COLUMNS
        )
        self.insert_tool = _render(RequestTool.__table__.insert(), rendering, _keys(RequestTool.__table__))
        self.insert_rule = _render(RequestRule.__table__.insert(), rendering, _keys(RequestRule.__table__))
        self.insert_body = _render(
            insert(Body).on_conflict_do_nothing(index_elements=["sha256"]), rendering, _keys(Body.__table__)
        )
        self._mark = "?" if self.sqlite else "%s"
        at = Record.__table__.c.at.type.dialect_impl(dialect)  # SQLite: UTCDateTime's naive UTC, then DATETIME's text
        self._time: Callable[[Any], Any] = at.bind_processor(dialect) or (lambda v: v)
        dbapi = dialect.loaded_dbapi
        self.unavailable: tuple[type[Exception], ...] = (
            dbapi.OperationalError,
            dbapi.InterfaceError,
            sa_exc.OperationalError,
            sa_exc.InterfaceError,
        )
        """The database cannot be reached or written (down, locked, read-only): nothing is wrong with the records."""
        self.refused: tuple[type[Exception], ...] = (dbapi.Error, sa_exc.SQLAlchemyError)
        """Anything else the database raises: a record it will not take."""
        self._raw: Any = None
        self._synchronous = _SQLITE_NORMAL
        """SQLite: the connection's own ``synchronous`` level (2 FULL, 1 NORMAL), restored after a relaxed commit."""

    @contextlib.contextmanager
    def transaction(self, *, synced: bool = True) -> Iterator[Any]:
        """A cursor in a transaction, committed on the way out; rolled back (and the connection dropped if the
        database failed) on an error. ``synced=False``: the commit returns before the disk has it (SQLite's
        ``synchronous = NORMAL``, PostgreSQL's ``synchronous_commit = off``), durable at the next synced commit
        or the database's own flush; as atomic and ordered as any other."""
        connection = self._connect()
        cursor = connection.cursor()
        relaxed = not synced and self.sqlite and self._synchronous > _SQLITE_NORMAL
        try:
            if relaxed:
                cursor.execute(f"PRAGMA synchronous = {_SQLITE_NORMAL}")  # outside a transaction, where it applies
            if self.sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            elif not synced:
                cursor.execute("SET LOCAL synchronous_commit = off")
            yield cursor
            connection.commit()
        except BaseException as exc:
            self._rollback(drop=isinstance(exc, self.unavailable))
            raise
        finally:
            if relaxed and self._raw is connection:
                with contextlib.suppress(Exception):
                    cursor.execute(f"PRAGMA synchronous = {self._synchronous}")
            with contextlib.suppress(Exception):
                cursor.close()

    def insert_log(self, cursor: Any, rows: list[Row]) -> list[int]:
        """Insert chain rows; their ids, in order."""
        params = [self.timed(row) for row in rows]
        if self.sqlite:  # the write lock is held, so the rowids of one executemany are consecutive
            cursor.executemany(self._insert_log, params)
            last = cursor.execute("SELECT last_insert_rowid()").fetchone()[0]
            return list(range(last - len(rows) + 1, last + 1))
        cursor.executemany(self._insert_log, params, returning=True)
        ids = []
        while True:
            ids.append(cursor.fetchone()[0])
            if not cursor.nextset():
                return ids

    def existing(self, cursor: Any, table: str, column: str, values: Sequence[Any]) -> set[Any]:
        """Which of ``values`` the column holds (``table`` and ``column`` are the writer's own names, not input)."""
        if not values:
            return set()
        marks = ", ".join([self._mark] * len(values))
        cursor.execute(f"SELECT {column} FROM {table} WHERE {column} IN ({marks})", list(values))  # noqa: S608
        return {found for (found,) in cursor.fetchall()}

    def timed(self, row: Row) -> Row:
        """``row`` with its ``at`` as the driver takes it (SQLite: naive UTC text, as SQLAlchemy stores it)."""
        return row | {"at": self._time(row["at"])}

    def close(self) -> None:
        self._rollback(drop=True)

    def _connect(self) -> Any:
        if self._raw is None:
            raw = self.db.engine.raw_connection()
            connection = raw.driver_connection
            raw.detach()  # its settings below are the writer's own: never handed back to the pool
            if self.sqlite:
                connection.isolation_level = None  # transactions are begun explicitly
                for pragma in self._pragmas:
                    connection.execute(pragma)
                self._synchronous = int(connection.execute("PRAGMA synchronous").fetchone()[0])
            self._raw = connection
        return self._raw

    def _rollback(self, *, drop: bool) -> None:
        if self._raw is None:
            return
        try:
            if not drop:
                self._raw.rollback()
                return
        except Exception:  # noqa: BLE001, S110 - a connection that cannot roll back is dropped below
            pass
        with contextlib.suppress(Exception):
            self._raw.close()
        self._raw = None


def _keys(table: Table, *, skip: str | None = None) -> list[str]:
    return [c.key for c in table.columns if c.key != skip]


def _render(statement: Any, dialect: Any, keys: Sequence[str]) -> str:
    return str(statement.compile(dialect=dialect, column_keys=list(keys)))
