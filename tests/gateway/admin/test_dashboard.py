"""The dashboard's counts, bucketed in SQL on SQLite and PostgreSQL, against what the index holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.admin.dashboard import TOP, dashboard
from gateway.audit.db import open_database
from gateway.audit.models import RequestIndex, RequestRule
from gateway.audit.query import stats
from gateway.audit.writer import AuditWriter
from gateway.errors import AuditError
from tests.gateway.audit.conftest import fill

T0 = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture()
def session(audit_url: str, home: Path) -> Iterator[Session]:
    writer = AuditWriter.open(audit_url, home=home)
    fill(writer, 30)
    writer.close()
    db = open_database(audit_url)
    with db.sessions() as s:
        ids = list(s.scalars(select(RequestIndex.id).order_by(RequestIndex.id)))
        for n, row_id in enumerate(ids):  # request n at T0 + n hours (+ 90 s), so buckets are known
            at = T0 + timedelta(hours=n, seconds=90)
            s.execute(update(RequestIndex).where(RequestIndex.id == row_id).values(at=at))
            s.execute(update(RequestRule).where(RequestRule.request_row_id == row_id).values(at=at))
        s.commit()
        yield s
    db.close()


def test_counts_by_decision_rule_and_agent_land_in_their_hour(session: Session) -> None:
    board = dashboard(session, "24h", now=T0 + timedelta(hours=29, minutes=30))
    assert board.since == T0 + timedelta(hours=6) and len(board.buckets) == 24
    in_window = {n for n in range(30) if n >= 6}
    blocks = [n for n in sorted(in_window) if n % 7 == 3]
    alerts = [n for n in sorted(in_window) if n % 5 == 1 and n % 7 != 3]
    assert [i + 6 for i, v in enumerate(board.by_decision["block"]) if v] == blocks
    assert [i + 6 for i, v in enumerate(board.by_decision["alert"]) if v] == alerts
    assert board.total() == len(in_window) and board.total("block") == len(blocks)
    assert sum(board.by_rule["policy.tool_not_allowed"]) == len(blocks)
    assert sum(board.by_rule["detect.injection.role_marker"]) == len(alerts)
    assert {k: sum(v) for k, v in board.by_agent.items()} == {"agent-a": len(blocks) + len(alerts)}


def test_held_requests_are_counted_and_a_decision_absent_from_the_window_costs_no_count(session: Session) -> None:
    now = T0 + timedelta(hours=29, minutes=30)
    assert dashboard(session, "24h", now=now).by_decision["hold"] == [0] * 24
    session.execute(update(RequestIndex).where(RequestIndex.at == T0 + timedelta(hours=20, seconds=90))
                    .values(decision="hold"))
    board = dashboard(session, "24h", now=now)
    assert [i + 6 for i, v in enumerate(board.by_decision["hold"]) if v] == [20] and board.total("hold") == 1
    assert "agent-a" in board.by_agent and sum(board.by_agent["agent-a"]) == 1 + sum(
        sum(board.by_decision[d]) for d in ("alert", "block"))


def test_the_whole_log_in_a_month_matches_the_stats(session: Session) -> None:
    board = dashboard(session, "30d", now=T0 + timedelta(days=2))
    totals = stats(session)
    assert {d: sum(v) for d, v in board.by_decision.items() if sum(v)} == totals["by_decision"]
    assert {r: sum(v) for r, v in board.by_rule.items()} == totals["by_rule"]


def test_many_series_are_cut_to_the_top_and_other(session: Session) -> None:
    rows = list(session.scalars(select(RequestIndex).where(RequestIndex.decision != "allow")))
    for n, row in enumerate(rows):
        row.agent = f"agent-{n}"
    session.commit()
    board = dashboard(session, "30d", now=T0 + timedelta(days=2))
    assert len(board.by_agent) == TOP + 1 and list(board.by_agent)[-1] == "other"
    assert sum(sum(v) for v in board.by_agent.values()) == len(rows)


def test_an_unknown_window_is_refused(session: Session) -> None:
    with pytest.raises(AuditError, match="window must be one of"):
        dashboard(session, "1y")
