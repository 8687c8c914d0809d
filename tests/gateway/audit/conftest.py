"""Real databases for the audit tests: SQLite in a temporary folder and PostgreSQL in a schema of its own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text

from gateway.audit.db import open_database
from gateway.audit.models import Record
from gateway.audit.writer import AuditWriter, WriterConfig
from gateway.events import RequestEvent, ResponseEvent, ToolCall, Usage
from gateway.findings import Finding
from tests.gateway.postgres import PG_SERVER, pg_admin


@pytest.fixture()
def pg_schema_url() -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards; the URL selects it with search_path."""
    admin = pg_admin()
    schema = f"mg_audit_{uuid.uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def audit_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'audit.db'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def request_event(n: int, **fields: Any) -> RequestEvent:
    values: dict[str, Any] = dict(
        request_id=f"req-{n}", agent="agent-a", session="sess-1", protocol="openai.chat", direction="reverse",
        method="POST", scheme="http", host="127.0.0.1", port=8000, path="/v1/chat/completions", model="smol",
    )
    return RequestEvent(**(values | fields))


def response_event(n: int, **fields: Any) -> ResponseEvent:
    values: dict[str, Any] = dict(request_id=f"req-{n}", protocol="openai.chat", status=200,
                                  usage=Usage(prompt_tokens=10, completion_tokens=5))
    return ResponseEvent(**(values | fields))


BLOCK = Finding(rule="policy.tool_not_allowed", action="block", reason="tool shell is not allowed",
                evidence=("shell",))
ALERT = Finding(rule="detect.injection.role_marker", action="alert", reason="role marker in tool result", score=0.8)


def fill(writer: AuditWriter, count: int, *, start: int = 0) -> None:
    """``count`` request/response pairs, some with findings and tool calls, recorded concurrently."""

    async def one(n: int) -> None:
        findings = [BLOCK] if n % 7 == 3 else [ALERT] if n % 5 == 1 else []
        await writer.record_request(request_event(n, session=f"sess-{n % 3}"), findings,
                                    body=f'{{"n": {n}, "messages": []}}'.encode())
        calls = (ToolCall(name="search"),) if n % 4 == 0 else ()
        await asyncio.wrap_future(writer.record_response(response_event(n, tool_calls=calls), body=b'{"ok":true}'))

    async def run() -> None:
        await asyncio.gather(*(one(n) for n in range(start, start + count)))

    asyncio.run(run())


def drop_tail(audit_url: str, count: int = 2) -> None:
    """Delete the chain's last ``count`` records behind the writer's back (by default the stop event and the
    final checkpoint): the database is then behind the state folder's witness."""
    db = open_database(audit_url)
    with db.sessions() as s, s.begin():
        last = s.scalar(select(func.max(Record.seq)))
        s.execute(delete(Record).where(Record.seq > last - count))
    db.close()


def small_checkpoints(**overrides: Any) -> WriterConfig:
    return WriterConfig(**({"checkpoint_every": 10} | overrides))
