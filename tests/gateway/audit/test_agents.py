"""Agents: keys issued once and kept as hashes, looked up from memory, revocation felt within seconds."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text

from gateway.audit.agents import KEY_PREFIX, AgentStore, add_agent, list_agents, revoke_agent
from gateway.audit.db import open_database
from gateway.audit.models import AgentRow
from gateway.errors import AgentError, AuditUnavailable


def wait_until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_add_lookup_revoke(audit_url: str) -> None:
    db = open_database(audit_url)
    issued = add_agent(db, "ci-bot", profile="strict")
    assert issued.key.startswith(KEY_PREFIX) and len(issued.key) == len(KEY_PREFIX) + 43
    with db.sessions() as s:
        row = s.scalars(select(AgentRow)).one()
        assert row.key_hash == hashlib.sha256(issued.key.encode()).hexdigest()
        assert issued.key not in repr(vars(row)) and row.key_prefix == issued.key[:12]
    store = AgentStore(db, refresh_s=0.05)
    try:
        agent = store.lookup(issued.key)
        assert agent is not None and (agent.name, agent.profile) == ("ci-bot", "strict")
        assert store.lookup(issued.key[:-1] + ("A" if issued.key[-1] != "A" else "B")) is None
        assert store.lookup("sk-not-ours") is None and store.lookup(KEY_PREFIX + "x" * 500) is None
        later = add_agent(db, "late")
        wait_until(lambda: store.lookup(later.key) is not None)  # new agents appear without a restart
        revoked = revoke_agent(db, "ci-bot")
        assert revoked.revoked_at is not None
        wait_until(lambda: store.lookup(issued.key) is None)
        assert [(a.name, a.revoked_at is not None) for a in list_agents(db)] == [("ci-bot", True), ("late", False)]
        assert revoke_agent(db, "ci-bot").revoked_at == revoked.revoked_at
    finally:
        store.close()
        db.close()


def test_names_are_checked_and_unique(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'a.db'}")
    add_agent(db, "bot-1")
    with pytest.raises(AgentError, match="already exists"):
        add_agent(db, "bot-1")
    for bad in ("", "-x", "has space", "x" * 129):
        with pytest.raises(AgentError, match="must be"):
            add_agent(db, bad)
    with pytest.raises(AgentError, match="profile"):
        add_agent(db, "bot-2", profile="no/slashes")
    with pytest.raises(AgentError, match="no agent named"):
        revoke_agent(db, "nobody")
    db.close()


def test_a_registry_that_cannot_be_read_stops_answering(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'a.db'}")
    key = add_agent(db, "bot").key
    store = AgentStore(db, refresh_s=0.05, max_stale_s=0.5)
    try:
        assert store.lookup(key) is not None
        with db.engine.begin() as connection:
            connection.execute(text("ALTER TABLE agents RENAME TO agents_gone"))
        assert store.lookup(key) is not None  # the last list still serves, for a while
        wait_until(lambda: _raises(store, key))
    finally:
        store.close()
        db.close()


def _raises(store: AgentStore, key: str) -> bool:
    try:
        store.lookup(key)
    except AuditUnavailable as exc:
        return "could not be read" in exc.reason
    return False


def test_the_proxy_shares_the_writers_database(audit_url: str, home: Path) -> None:
    import asyncio

    from gateway.audit.writer import AuditWriter
    from tests.gateway.audit.conftest import request_event

    writer = AuditWriter.open(audit_url, home=home)
    key = add_agent(writer.database, "proxy-bot").key
    store = AgentStore(writer.database)

    async def serve() -> None:
        agent = store.lookup(key)
        assert agent is not None
        await writer.record_request(request_event(1, agent=agent.name))
        store.close()
        await writer.aclose()

    asyncio.run(serve())
    with pytest.raises(AuditUnavailable, match="closed"):
        asyncio.run(writer.record_request(request_event(2)))
