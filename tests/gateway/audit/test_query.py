"""The review screens' queries: filters, keyset pages, details, timelines, model loads and stats."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from gateway.audit import query
from gateway.audit.db import open_database
from gateway.audit.query import (
    RequestFilter,
    iter_requests,
    list_requests,
    model_loads,
    request_detail,
    session_timeline,
    stats,
)
from gateway.audit.writer import AuditWriter
from gateway.errors import AuditError
from tests.gateway.audit.conftest import fill

N = 30


@pytest.fixture()
def session(audit_url: str, home: Path) -> Iterator[Session]:
    writer = AuditWriter.open(audit_url, home=home)
    for n in range(N):  # one at a time, so that request n is older than request n + 1
        fill(writer, 1, start=n)
    asyncio.run(writer.record_event("approval.granted", request_id="req-4", session="sess-1", data={"by": "bob"}))
    asyncio.run(writer.record_model_load({"model": "smol", "decision": "loaded"}))
    writer.close()
    db = open_database(audit_url)
    with db.sessions() as s:
        yield s
    db.close()


def numbers(rows: list[dict]) -> list[int]:
    return [int(r["request_id"].split("-")[1]) for r in rows]


def test_newest_first_and_keyset_pages_cover_everything_once(session: Session) -> None:
    seen, before = [], None
    while True:
        page = list_requests(session, before=before, limit=7)
        seen += numbers(page.rows)
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == list(range(N - 1, -1, -1))
    assert numbers(list(iter_requests(session, page=4))) == seen


def walk(session: Session, filters: RequestFilter, limit: int) -> tuple[list[list[int]], list[list[int]]]:
    """Every page from the newest to the oldest, then back up through the newer links: both lists of pages."""
    pages, page = [], list_requests(session, filters, limit=limit)
    assert page.next_after is None  # nothing is newer than the newest page
    while True:
        pages.append(numbers(page.rows))
        if page.next_before is None:
            break
        page = list_requests(session, filters, before=page.next_before, limit=limit)
    back = [numbers(page.rows)]
    while page.next_after is not None:
        page = list_requests(session, filters, after=page.next_after, limit=limit)
        back.append(numbers(page.rows))
    return pages, back


@pytest.mark.parametrize(("filters", "expected"), [
    (RequestFilter(), list(range(N))),
    (RequestFilter(decision="block"), [n for n in range(N) if n % 7 == 3]),
    (RequestFilter(tool="search"), [n for n in range(N) if n % 4 == 0]),
    (RequestFilter(rule="policy.tool_not_allowed"), [n for n in range(N) if n % 7 == 3]),
    (RequestFilter(session="sess-2"), [n for n in range(N) if n % 3 == 2]),
])
def test_pages_go_older_and_back_newer_through_the_same_pages(session: Session, filters: RequestFilter,
                                                             expected: list[int]) -> None:
    pages, back = walk(session, filters, limit=4)
    assert [n for p in pages for n in p] == sorted(expected, reverse=True) and all(len(p) == 4 for p in pages[:-1])
    assert pages[-1], "an exact last page links no further: no empty page after it"
    assert back == pages[::-1]


def test_free_text_pages_go_both_ways_through_bounded_windows(session: Session,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(query, "TEXT_WINDOW", 4)
    pages, back = walk(session, RequestFilter(text="req-1"), limit=3)
    matches = [19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 1]
    assert [n for p in pages for n in p] == matches and [] in pages  # a window without a match is a page
    assert [n for p in back[::-1] for n in p] == matches  # windows lie otherwise going up: every match, once


def test_a_cursor_is_before_or_after_not_both(session: Session) -> None:
    newest = list_requests(session, limit=1).rows[0]["id"]
    with pytest.raises(AuditError, match="not both"):
        list_requests(session, before=newest, after=newest)
    assert list_requests(session, after=newest).rows == []


@pytest.mark.parametrize(("filters", "expected"), [
    (RequestFilter(decision="block"), [n for n in range(N) if n % 7 == 3]),
    (RequestFilter(decision="alert"), [n for n in range(N) if n % 5 == 1 and n % 7 != 3]),
    (RequestFilter(rule="policy.tool_not_allowed"), [n for n in range(N) if n % 7 == 3]),
    (RequestFilter(tool="search"), [n for n in range(N) if n % 4 == 0]),
    (RequestFilter(tool="search", rule="policy.tool_not_allowed"), [n for n in range(N) if n % 28 == 24]),
    (RequestFilter(session="sess-2"), [n for n in range(N) if n % 3 == 2]),
    (RequestFilter(session="sess-2", decision="block"), [n for n in range(N) if n % 3 == 2 and n % 7 == 3]),
    (RequestFilter(agent="agent-a", model="smol", host="127.0.0.1"), list(range(N))),
    (RequestFilter(agent="nobody"), []),
    (RequestFilter(text="REQ-1"), [n for n in range(N) if str(n).startswith("1")]),
    (RequestFilter(text="tool_not"), [n for n in range(N) if n % 7 == 3]),
    (RequestFilter(text="100%_"), []),
])
def test_filters(session: Session, filters: RequestFilter, expected: list[int]) -> None:
    assert numbers(list(iter_requests(session, filters, page=3))) == sorted(expected, reverse=True)


def test_a_time_range(session: Session) -> None:
    rows = list_requests(session, limit=N).rows
    by_n = {int(r["request_id"].split("-")[1]): r for r in rows}
    from datetime import datetime

    since, until = (datetime.fromisoformat(by_n[n]["at"]) for n in (10, 20))
    assert numbers(list(iter_requests(session, RequestFilter(since=since, until=until)))) == list(range(19, 9, -1))
    later = RequestFilter(since=until + timedelta(days=1))
    assert list_requests(session, later).rows == []


def test_free_text_pages_look_at_a_bounded_window(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(query, "TEXT_WINDOW", 4)
    first = list_requests(session, RequestFilter(text="req-2"), limit=50)  # the 4 newest: 29, 28, 27, 26
    assert numbers(first.rows) == [29, 28, 27, 26] and first.next_before is not None
    second = list_requests(session, RequestFilter(text="req-1"), before=first.next_before)  # 25..22: none
    assert second.rows == [] and second.next_before is not None
    everything = numbers(list(iter_requests(session, RequestFilter(text="req-1"))))
    assert everything == [19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 1]


def test_bad_filters_and_cursors_are_usage_errors(session: Session) -> None:
    with pytest.raises(AuditError, match="decision must be"):
        RequestFilter(decision="maybe")
    from datetime import datetime

    with pytest.raises(AuditError, match="timezone"):
        RequestFilter(since=datetime(2025, 1, 1))
    with pytest.raises(AuditError, match="no request with id"):
        list_requests(session, before=10**9)
    with pytest.raises(AuditError, match="1 to 1000"):
        list_requests(session, limit=0)


def test_detail_timeline_and_model_loads(session: Session) -> None:
    row = next(r for r in list_requests(session, limit=N).rows if r["request_id"] == "req-4")
    detail = request_detail(session, row["id"])
    assert [r["kind"] for r in detail["records"]] == ["request", "response", "event"]
    assert detail["request_body"]["text"] == '{"n": 4, "messages": []}'
    assert detail["response_body"]["text"] == '{"ok":true}' and detail["tools"] == "search"
    timeline = session_timeline(session, "sess-1")
    assert [r["at"] for r in timeline] == sorted(r["at"] for r in timeline)
    assert {r["request_id"] for r in timeline if r["kind"] == "request"} == {f"req-{n}" for n in range(1, N, 3)}
    assert any(r["kind"] == "event" and r["data"]["details"] == {"by": "bob"} for r in timeline)
    (load,) = model_loads(session)
    assert load["data"] == {"model": "smol", "decision": "loaded"}
    with pytest.raises(AuditError, match="no request with id"):
        request_detail(session, 10**9)


def test_stats(session: Session) -> None:
    result = stats(session)
    blocked = len([n for n in range(N) if n % 7 == 3])
    alerted = len([n for n in range(N) if n % 5 == 1 and n % 7 != 3])
    assert result["requests"] == N
    assert result["by_decision"] == {"allow": N - blocked - alerted, "block": blocked, "alert": alerted}
    assert result["by_agent"] == {"agent-a": N}
    assert result["by_rule"]["policy.tool_not_allowed"] == blocked
    assert 0 <= result["latency_ms"]["p50"] <= result["latency_ms"]["p99"]
    assert stats(session, RequestFilter(session="sess-0"))["requests"] == 10
    assert stats(session, RequestFilter(agent="nobody"))["latency_ms"] == {"p50": None, "p99": None}
