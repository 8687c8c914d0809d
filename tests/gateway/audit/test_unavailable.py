"""A database that cannot be written fails requests at once (the proxy answers 503) and loses no record."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from gateway.audit.db import open_database
from gateway.audit.models import Record
from gateway.audit.state import AuditState
from gateway.audit.verify import verify_audit
from gateway.audit.writer import AuditWriter, WriterConfig
from gateway.errors import AuditError, AuditUnavailable
from tests.gateway.audit.conftest import fill, request_event, response_event
from tests.gateway.postgres import PG_SERVER, database_url


def test_a_read_only_sqlite_file_refuses_at_start(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "audit.db"
    AuditWriter.open(f"sqlite:///{path}", home=home).close()
    started = time.monotonic()
    with pytest.raises(AuditUnavailable, match="readonly"):
        AuditWriter.open(f"sqlite:///file:{path}?mode=ro&uri=true", home=home)
    assert time.monotonic() - started < 3


def test_a_locked_sqlite_database_refuses_promptly_then_recovers(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "audit.db"
    writer = AuditWriter.open(f"sqlite:///{path}", home=home, config=WriterConfig(commit_timeout_s=0.5))
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    started = time.monotonic()
    with pytest.raises(AuditUnavailable, match="not committed within 0.5s"):
        asyncio.run(writer.record_request(request_event(1)))
    assert time.monotonic() - started < 1.5
    blocker.execute("ROLLBACK")
    blocker.close()
    deadline = time.monotonic() + 10
    while True:  # the refused request's record lands once the lock is gone (never one less than was refused)
        try:
            asyncio.run(writer.record_request(request_event(2)))
            break
        except AuditUnavailable:
            assert time.monotonic() < deadline
    writer.close()
    db = open_database(f"sqlite:///{path}")
    with db.sessions() as s:
        assert set(s.scalars(select(Record.request_id).where(Record.kind == "request"))) <= {"req-1", "req-2"}
    verify_audit(db, state=AuditState.open(home, create=False))
    db.close()


def test_postgresql_on_a_closed_port_refuses_at_start(home: Path) -> None:
    started = time.monotonic()
    with pytest.raises(AuditUnavailable, match="cannot open the audit database"):
        AuditWriter.open("postgresql+psycopg://postgres@127.0.0.1:9/test", home=home)
    assert time.monotonic() - started < 6


def test_a_dropped_postgresql_database_fails_requests_and_keeps_responses(pg_database: str, home: Path) -> None:
    url = database_url(pg_database)
    writer = AuditWriter.open(url, home=home)
    fill(writer, 3)

    async def request_then_drop() -> None:
        await writer.record_request(request_event(10))
        admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE {pg_database} WITH (FORCE)"))
        admin.dispose()
        writer.record_response(response_event(10))  # answered before the drop was noticed: must not vanish
        started = time.monotonic()
        with pytest.raises(AuditUnavailable, match="cannot be written"):
            await writer.record_request(request_event(11))
        assert time.monotonic() - started < 3

    asyncio.run(request_then_drop())
    assert writer.stats.pending_responses == 1
    with pytest.raises(AuditUnavailable, match="1 audit records could not be written") as caught:
        writer.close()
    kept = home / "audit" / "unwritten.jsonl"
    assert str(kept) in caught.value.reason
    (line,) = kept.read_text().splitlines()
    assert json.loads(line)["request_id"] == "req-10" and json.loads(line)["kind"] == "response"


def test_responses_kept_at_shutdown_are_written_at_the_next_start(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "audit.db"
    url = f"sqlite:///{path}"
    writer = AuditWriter.open(url, home=home)
    asyncio.run(writer.record_request(request_event(1)))
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    writer.record_response(response_event(1))
    with pytest.raises(AuditUnavailable, match="could not be written"):
        writer.close()  # waits out SQLite's busy timeout, then keeps the response in the state folder
    blocker.execute("ROLLBACK")
    blocker.close()
    assert (home / "audit" / "unwritten.jsonl").exists()
    AuditWriter.open(url, home=home).close()
    assert not (home / "audit" / "unwritten.jsonl").exists()
    db = open_database(url)
    with db.sessions() as s:
        assert s.scalars(select(Record.request_id).where(Record.kind == "response")).all() == ["req-1"]
    verify_audit(db, state=AuditState.open(home, create=False))
    db.close()


def test_a_damaged_file_of_kept_records_stops_the_start(tmp_path: Path, home: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    AuditWriter.open(url, home=home).close()
    (home / "audit" / "unwritten.jsonl").write_text("{not json\n")
    with pytest.raises(AuditError, match="line 1 is malformed"):
        AuditWriter.open(url, home=home)
    (home / "audit" / "unwritten.jsonl").unlink()
    AuditWriter.open(url, home=home).close()  # the lock was released
