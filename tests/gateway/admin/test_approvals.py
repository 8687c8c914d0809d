"""Approvals and rejections: audited before they take effect, refused when the tool changed since review."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.admin.approvals import Reviewer, approve_tool, reject_tool
from gateway.audit.db import open_database
from gateway.audit.models import Record
from gateway.audit.pins import DatabasePinStore
from gateway.audit.state import AuditState
from gateway.audit.verify import verify_audit
from gateway.audit.writer import AuditWriter
from gateway.errors import AuditUnavailable, DetectionError, ToolNotPinned
from tests.gateway.admin.seed import CHANGED, MCP_SERVER, quarantine

ALICE = Reviewer("ui", "session 1234abcd from 127.0.0.1", "checked with the mail team")


@pytest.fixture()
def writer(audit_url: str, home: Path) -> Iterator[AuditWriter]:
    quarantine(audit_url, home)
    opened = AuditWriter.open(audit_url, home=home)
    yield opened
    opened.close()


def events(writer: AuditWriter) -> list[dict]:
    with writer.database.sessions() as session:
        rows = session.scalars(select(Record.data).where(Record.kind == "event").order_by(Record.id))
        return [d for d in map(json.loads, rows) if d["event"].startswith("approval.")]


def test_an_approval_is_recorded_then_re_pins_what_the_reviewer_saw(writer: AuditWriter, audit_url: str,
                                                                   home: Path) -> None:
    store = DatabasePinStore(writer.database)
    (review,) = store.quarantined()
    seen = review.pin.observed_digest
    pin = asyncio.run(approve_tool(store, writer, MCP_SERVER, "send_email", seen_digest=seen, reviewer=ALICE))
    assert pin.status == "pinned" and pin.digest == seen and pin.description == CHANGED
    assert store.quarantined() == []
    (event,) = events(writer)
    assert event["event"] == "approval.granted"
    assert event["details"] | {"quarantined_at": None} == {
        "server": MCP_SERVER, "tool": "send_email", "pinned_digest": review.pin.digest, "observed_digest": seen,
        "quarantine_reason": review.pin.reason, "quarantined_at": None, "was_rejected": False, "via": "ui",
        "by": ALICE.who, "note": "checked with the mail team"}
    writer.close()
    db = open_database(audit_url)
    try:
        verify_audit(db, state=AuditState.open(home, create=False))  # the decision is a link of the chain
    finally:
        db.close()


def test_a_tool_that_changed_since_review_or_is_not_quarantined_is_refused(writer: AuditWriter) -> None:
    store = DatabasePinStore(writer.database)
    with pytest.raises(DetectionError, match="changed again since it was reviewed"):
        asyncio.run(approve_tool(store, writer, MCP_SERVER, "send_email", seen_digest="0" * 64, reviewer=ALICE))
    with pytest.raises(DetectionError, match="not quarantined"):
        asyncio.run(approve_tool(store, writer, MCP_SERVER, "search", seen_digest=None, reviewer=ALICE))
    with pytest.raises(ToolNotPinned):
        asyncio.run(reject_tool(store, writer, MCP_SERVER, "nothing", seen_digest=None, reviewer=ALICE))
    assert events(writer) == [] and len(store.quarantined()) == 1  # nothing recorded, nothing changed


def test_a_rejection_is_recorded_and_keeps_the_tool_refused(writer: AuditWriter) -> None:
    store = DatabasePinStore(writer.database)
    review = asyncio.run(reject_tool(store, writer, MCP_SERVER, "send_email", seen_digest=None, reviewer=ALICE))
    assert review.rejected and review.pin.status == "quarantined"
    assert [e["event"] for e in events(writer)] == ["approval.rejected"]
    asyncio.run(approve_tool(store, writer, MCP_SERVER, "send_email", seen_digest=None, reviewer=ALICE))
    assert [e["event"] for e in events(writer)] == ["approval.rejected", "approval.granted"]
    assert events(writer)[1]["details"]["was_rejected"] is True


def test_a_decision_that_cannot_be_recorded_is_not_applied(writer: AuditWriter, audit_url: str) -> None:
    writer.close()  # the log cannot be written any more
    db = open_database(audit_url)
    try:
        store = DatabasePinStore(db)
        with pytest.raises(AuditUnavailable):
            asyncio.run(approve_tool(store, writer, MCP_SERVER, "send_email", seen_digest=None, reviewer=ALICE))
        assert [r.pin.status for r in store.quarantined()] == ["quarantined"]
    finally:
        db.close()
