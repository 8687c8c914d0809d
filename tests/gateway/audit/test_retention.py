"""Retention: pruning old records keeps what remains verifiable, and tampering with it still shows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from gateway.audit import retention
from gateway.audit.db import open_database
from gateway.audit.models import Body, PruneAnchor, Record, RequestIndex, RequestRule, RequestTool
from gateway.audit.retention import prune
from gateway.audit.state import AuditState
from gateway.audit.verify import verify_audit
from gateway.audit.writer import AuditWriter
from gateway.errors import AuditError, AuditTampered
from tests.gateway.audit.conftest import fill, request_event, small_checkpoints


def build(url: str, home: Path) -> datetime:
    """Twenty request/response pairs; returns the time of request 10 (sequential, so times increase)."""
    writer = AuditWriter.open(url, home=home, config=small_checkpoints())
    for n in range(20):
        fill(writer, 1, start=n)
    writer.close()
    db = open_database(url)
    with db.sessions() as s:
        cut = s.scalars(select(Record.at).where(Record.request_id == "req-10", Record.kind == "request")).one()
    db.close()
    return cut


def verify(url: str, home: Path) -> None:
    db = open_database(url)
    try:
        verify_audit(db, state=AuditState.open(home, create=False))
    finally:
        db.close()


def test_prune_removes_old_records_and_verification_still_passes(audit_url: str, home: Path) -> None:
    cut = build(audit_url, home)
    db = open_database(audit_url)
    with db.sessions() as s:
        bodies_before = s.scalar(select(func.count()).select_from(Body))
    result = prune(db, AuditState.open(home, create=False), before=cut)
    with db.sessions() as s:
        first = s.scalar(select(func.min(Record.seq)))
        assert result.first_seq == first and result.records == first - 1
        assert s.scalars(select(Record.request_id).where(Record.kind == "request")
                         .order_by(Record.seq)).first() == "req-10"
        assert result.requests == 10 and s.scalar(select(func.count()).select_from(RequestIndex)) == 10
        assert s.scalar(select(func.count()).select_from(RequestTool).where(RequestTool.at < cut)) == 0
        # Ten request bodies went; the response body that every request shares stays.
        assert result.bodies == 10 and s.scalar(select(func.count()).select_from(Body)) == bodies_before - 10
        (anchor,) = s.scalars(select(PruneAnchor)).all()
        assert anchor.first_seq == first and anchor.prev_hash == s.scalar(
            select(Record.prev_hash).where(Record.seq == first))
    db.close()
    verify(audit_url, home)
    writer = AuditWriter.open(audit_url, home=home)  # the writer carries on after the anchor
    fill(writer, 2, start=100)
    writer.close()
    verify(audit_url, home)


def test_tampering_after_a_prune_is_still_found(audit_url: str, home: Path) -> None:
    cut = build(audit_url, home)
    db = open_database(audit_url)
    prune(db, AuditState.open(home, create=False), before=cut)
    with db.engine.begin() as connection:
        target = connection.execute(select(Record.id, Record.seq).where(Record.request_id == "req-15",
                                                                        Record.kind == "request")).one()
        connection.execute(update(Record).where(Record.id == target.id).values(session="elsewhere"))
    with pytest.raises(AuditTampered) as caught:
        verify_audit(db, state=AuditState.open(home, create=False))
    assert (caught.value.problems[0].what, caught.value.problems[0].id) == ("modified", target.id)
    db.close()


def test_records_removed_beyond_the_anchor_are_deleted_ones(audit_url: str, home: Path) -> None:
    cut = build(audit_url, home)
    db = open_database(audit_url)
    prune(db, AuditState.open(home, create=False), before=cut)
    with db.engine.begin() as connection:
        first, row_id = connection.execute(select(Record.seq, Record.id).order_by(Record.seq).limit(1)).one()
        connection.execute(delete(RequestTool).where(RequestTool.request_row_id == row_id))
        connection.execute(delete(RequestRule).where(RequestRule.request_row_id == row_id))
        connection.execute(delete(RequestIndex).where(RequestIndex.id == row_id))
        connection.execute(delete(Record).where(Record.seq == first))
    with pytest.raises(AuditTampered) as caught:
        verify_audit(db, state=AuditState.open(home, create=False))
    assert (caught.value.problems[0].what, caught.value.problems[0].seq) == ("deleted", first + 1)
    db.close()


def test_a_moved_anchor_does_not_verify(audit_url: str, home: Path) -> None:
    cut = build(audit_url, home)
    db = open_database(audit_url)
    prune(db, AuditState.open(home, create=False), before=cut)
    with db.engine.begin() as connection:
        connection.execute(update(PruneAnchor).values(first_seq=PruneAnchor.first_seq + 3))
    with pytest.raises(AuditTampered) as caught:
        verify_audit(db, state=AuditState.open(home, create=False))
    assert caught.value.problems[0].what in ("bad_anchor", "inserted")
    assert any(p.what == "bad_anchor" for p in caught.value.problems)
    db.close()


def test_pruning_everything_in_small_chunks(audit_url: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "_CHUNK", 7)
    build(audit_url, home)
    db = open_database(audit_url)
    result = prune(db, AuditState.open(home, create=False), before=datetime.now(UTC) + timedelta(days=1))
    with db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Record)) == 0
        assert s.scalar(select(func.count()).select_from(Body)) == 0
        assert len(s.scalars(select(PruneAnchor)).all()) == 1
    assert result.records > 40
    db.close()
    verify(audit_url, home)
    writer = AuditWriter.open(audit_url, home=home)
    asyncio.run(writer.record_request(request_event(1)))
    writer.close()
    verify(audit_url, home)


def test_prune_needs_a_time_zone_and_this_databases_state(tmp_path: Path, home: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    AuditWriter.open(url, home=home).close()
    db = open_database(url)
    with pytest.raises(AuditError, match="timezone"):
        prune(db, AuditState.open(home, create=False), before=datetime(2025, 1, 1))
    other = tmp_path / "other"
    AuditWriter.open(f"sqlite:///{tmp_path / 'b.db'}", home=other).close()
    with pytest.raises(AuditError, match="does not belong"):
        prune(db, AuditState.open(other, create=False), before=datetime.now(UTC))
    db.close()
