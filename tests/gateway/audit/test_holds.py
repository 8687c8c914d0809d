"""Held calls in the audit database, on SQLite and PostgreSQL: the queue, one decision per call, expiry."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.audit.db import AuditDatabase, open_database
from gateway.audit.holds import HeldCallStore
from gateway.errors import AuditUnavailable, CallNotHeld, DetectionError
from gateway.events import ToolCall
from gateway.findings import Finding
from tests.gateway.audit.conftest import request_event

SECRET = "sk-proj-" + "A1b2C3d4E5f6G7h8J9k0L1m2N3o4P5q6"
CALL = ToolCall(name="send_email", arguments_raw=f'{{"to": "cfo@example.com", "body": "key {SECRET}"}}')
HELD = Finding(rule="policy.tool_held", action="hold", reason="tool 'send_email' waits for a reviewer")
ALERT = Finding(rule="detect.injection.role_marker", action="alert", reason="a marker")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture()
def db(audit_url: str) -> Iterator[AuditDatabase]:
    opened = open_database(audit_url)
    yield opened
    opened.close()


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def store(db: AuditDatabase, clock: Clock) -> HeldCallStore:
    return HeldCallStore(db, clock=clock)


def hold(store: HeldCallStore, n: int = 1, *, instance: str = "gw-1", timeout_s: float = 60) -> int:
    return store.hold(request_event(n), "response", [CALL], [HELD, HELD, ALERT], instance_id=instance,
                      timeout_s=timeout_s).id


def test_a_held_call_is_queued_redacted_with_why_it_was_held(store: HeldCallStore, clock: Clock) -> None:
    held = store.get(hold(store))
    assert (held.status, held.stage, held.agent, held.request_id) == ("pending", "response", "agent-a", "req-1")
    assert held.calls == ({"name": "send_email", "arguments": held.calls[0]["arguments"], "server": None},)
    assert SECRET not in held.calls[0]["arguments"] and "cfo@example.com" in held.calls[0]["arguments"]
    assert held.reasons == ({"rule": "policy.tool_held", "severity": "medium", "reason": HELD.reason},)  # once
    assert held.expires_at - held.held_at == timedelta(seconds=60) and held.held_at == clock.now
    assert [h.id for h in store.pending()] == [held.id]


def test_the_first_decision_wins_and_a_second_says_what_happened(store: HeldCallStore) -> None:
    number = hold(store)
    decided = store.decide(number, "approved", by="ui session ab12", note="expected")
    assert (decided.status, decided.decided_by, decided.note) == ("approved", "ui session ab12", "expected")
    with pytest.raises(DetectionError, match="no longer waiting: approved by ui session ab12"):
        store.decide(number, "rejected", by="cli bob@host")
    assert store.expire(number, by="gateway", note="late") is None  # the gateway reads the approval instead
    assert store.pending() == [] and store.get(number).status == "approved"


def test_no_decision_is_taken_after_a_call_expires(store: HeldCallStore, clock: Clock) -> None:
    number = hold(store, timeout_s=30)
    clock.now += timedelta(seconds=31)
    assert store.pending() == []  # its gateway refuses it: nobody should be offered it
    with pytest.raises(DetectionError, match="expired at 12:00:30"):
        store.decide(number, "approved", by="ui")
    expired = store.expire(number, by="gateway", note="no decision within 30s")
    assert expired is not None and (expired.status, expired.note) == ("expired", "no decision within 30s")


def test_a_restart_expires_only_what_that_instance_held(store: HeldCallStore) -> None:
    mine, other, decided = hold(store, 1), hold(store, 2, instance="gw-2"), hold(store, 3)
    store.decide(decided, "rejected", by="ui")
    (expired,) = store.expire_instance("gw-1", by="gateway", note="the gateway restarted")
    assert expired.id == mine and store.get(mine).status == "expired"
    assert store.get(other).status == "pending" and store.get(decided).status == "rejected"


def test_concurrent_decisions_leave_exactly_one_winner(store: HeldCallStore) -> None:
    number = hold(store)

    def decide(n: int) -> str:
        try:
            return store.decide(number, "approved" if n % 2 else "rejected", by=f"reviewer-{n}").decided_by or ""
        except DetectionError:
            return ""

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        winners = [w for w in pool.map(decide, range(16)) if w]
    assert len(winners) == 1 and store.get(number).decided_by == winners[0]


def test_unknown_calls_and_decisions_are_refused(store: HeldCallStore) -> None:
    with pytest.raises(CallNotHeld, match="no held call 999"):
        store.get(999)
    with pytest.raises(CallNotHeld):
        store.decide(999, "approved", by="ui")
    with pytest.raises(DetectionError, match="approved or rejected"):
        store.decide(hold(store), "expired", by="ui")  # type: ignore[arg-type]


def test_a_database_that_is_gone_fails_closed(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'audit.db'}")
    store = HeldCallStore(db)
    with db.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE held_calls")
    with pytest.raises(AuditUnavailable, match="the held calls cannot be used"):
        hold(store)
    db.close()
