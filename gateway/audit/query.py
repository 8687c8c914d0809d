"""Reading the audit log the way the review screens and the CLI do: pages, details, timelines, stats.

Lists are newest first, ordered by ``(at, id)`` and paged by keyset both ways: the older page is
"before this id", the newer one "after this id" (walked oldest first from the cursor, shown newest
first), so page 1000 costs what page 1 does and no page counts or skips rows. Each filter has an index
that starts with its column and ends with ``(at, id)``; the tool and rule filters walk their own
tables' indexes in the same order. Free text has no index: a page with ``text`` looks at most
``TEXT_WINDOW`` rows (after the other filters) and says where it stopped, so a rare word costs a few
pages, never one unbounded scan.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from gateway.audit.models import Body, Record, RequestIndex, RequestRule, RequestTool
from gateway.errors import AuditError

__all__ = [
    "EXPORT_COLUMNS",
    "TEXT_WINDOW",
    "Page",
    "RequestFilter",
    "iter_requests",
    "list_requests",
    "model_loads",
    "parse_time",
    "request_detail",
    "session_timeline",
    "stats",
]

EXPORT_COLUMNS = (
    "id", "request_id", "at", "instance_id", "agent", "session", "direction", "protocol", "method", "host", "path",
    "model", "decision", "request_decision", "response_decision", "status", "latency_us", "tools", "rules",
    "request_size", "response_size", "prompt_tokens", "completion_tokens", "request_body", "response_body",
)
_DECISIONS = ("allow", "alert", "hold", "block")
_TEXT_COLUMNS = ("host", "path", "model", "agent", "session", "request_id", "tools", "rules")
_MAX_PAGE = 1000
TEXT_WINDOW = 20_000
"""Rows a free-text page examines at most."""
_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_time(text: str | None, name: str) -> datetime | None:
    """ISO 8601 (a time without a zone is UTC) or an age such as ``30m``, ``12h``, ``7d``; empty is None."""
    if text is None or not text.strip():
        return None
    if match := _RELATIVE.match(text.strip()):
        return datetime.now(UTC) - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise AuditError(f"{name} {text!r} is neither an ISO 8601 time (2025-01-31T12:00Z) nor an age (7d)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RequestFilter:
    """What the list screen filters on; every field set must match (free ``text`` matches any column)."""

    agent: str | None = None
    session: str | None = None
    decision: str | None = None
    rule: str | None = None
    tool: str | None = None
    model: str | None = None
    host: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    """Exclusive."""
    text: str | None = None
    """A substring of the host, path, model, agent, session, request id, tools or rules (case-insensitive)."""

    def __post_init__(self) -> None:
        if self.decision is not None and self.decision not in _DECISIONS:
            raise AuditError(f"decision must be one of {', '.join(_DECISIONS)}, not {self.decision!r}")
        for value in (self.since, self.until):
            if value is not None and value.tzinfo is None:
                raise AuditError("give times with a timezone (e.g. 2025-01-31T00:00:00Z)")


@dataclass(frozen=True)
class Page:
    """One page of requests, newest first, and the cursors of the pages beside it (None: there is none)."""

    rows: list[dict[str, Any]]
    next_before: int | None
    """Pass as ``before`` for the older page."""
    next_after: int | None = None
    """Pass as ``after`` for the newer page."""

    def to_json(self) -> dict[str, Any]:
        return {"requests": self.rows, "next_before": self.next_before, "next_after": self.next_after}


def _summary(row: RequestIndex) -> dict[str, Any]:
    return {c: (getattr(row, c).isoformat() if c == "at" else getattr(row, c)) for c in EXPORT_COLUMNS}


def _query(filters: RequestFilter, cursor: int | None, newer: bool, session: Session) -> Select[tuple[RequestIndex]]:
    """The filtered rows on one side of ``cursor``, nearest first: older ones newest first, newer ones oldest first."""
    # The ordering columns are those of the index that the narrowest filter walks.
    at, row_id = RequestIndex.at, RequestIndex.id
    query = select(RequestIndex)
    if filters.tool is not None:
        query = query.join(RequestTool, and_(RequestTool.request_row_id == RequestIndex.id,
                                             RequestTool.tool == filters.tool))
        at, row_id = RequestTool.at, RequestTool.request_row_id
    if filters.rule is not None:
        query = query.join(RequestRule, and_(RequestRule.request_row_id == RequestIndex.id,
                                             RequestRule.rule == filters.rule))
        if filters.tool is None:
            at, row_id = RequestRule.at, RequestRule.request_row_id
    for column in ("agent", "session", "decision", "model", "host"):
        if (value := getattr(filters, column)) is not None:
            query = query.where(getattr(RequestIndex, column) == value)
    if filters.since is not None:
        query = query.where(at >= filters.since)
    if filters.until is not None:
        query = query.where(at < filters.until)
    if cursor is not None:
        cursor_at = session.scalar(select(RequestIndex.at).where(RequestIndex.id == cursor))
        if cursor_at is None:
            raise AuditError(f"no request with id {cursor} to page from")
        key, mark = tuple_(at, row_id), tuple_(cursor_at, cursor)
        query = query.where(key > mark if newer else key < mark)
    return query.order_by(at.asc(), row_id.asc()) if newer else query.order_by(at.desc(), row_id.desc())


def list_requests(session: Session, filters: RequestFilter | None = None, *, before: int | None = None,
                  after: int | None = None, limit: int = 50) -> Page:
    """One page of requests, newest first: the newest, those ``before`` a request id, or those ``after`` one.
    ``next_before`` and ``next_after`` of the page are the cursors of its older and newer neighbours."""
    if not 1 <= limit <= _MAX_PAGE:
        raise AuditError(f"a page holds 1 to {_MAX_PAGE} rows")
    if before is not None and after is not None:
        raise AuditError("page before a request or after one, not both")
    filters = filters or RequestFilter()
    newer = after is not None
    cursor = after if newer else before
    query = _query(filters, cursor, newer, session)
    ids = query.with_only_columns(RequestIndex.id)
    if not filters.text:
        found = [_summary(row) for row in session.scalars(query.limit(limit + 1))]
        rows = found[:limit]
        onward = rows[-1]["id"] if len(found) > limit else None
    else:
        window = query.limit(TEXT_WINDOW).subquery()
        matched = aliased(RequestIndex, window)
        pattern = "%" + filters.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        text = or_(*(getattr(matched, c).ilike(pattern, escape="\\") for c in _TEXT_COLUMNS))
        order = (matched.at.asc(), matched.id.asc()) if newer else (matched.at.desc(), matched.id.desc())
        found = [_summary(row) for row in session.scalars(select(matched).where(text).order_by(*order)
                                                           .limit(limit + 1))]
        rows = found[:limit]
        if len(found) > limit:  # more matches than asked: go on from the last one shown
            onward = rows[-1]["id"]
        else:  # fewer: go on from the window's last row, if any row lies beyond it (the one bounded skip)
            edge = list(session.scalars(ids.offset(TEXT_WINDOW - 1).limit(2)))
            onward = edge[0] if len(edge) == 2 else None
    # Back the way we came: from the row nearest the cursor (a window without a match: its first row).
    back = None if cursor is None else rows[0]["id"] if rows else session.scalar(ids.limit(1))
    if newer:
        rows.reverse()
        return Page(rows, back, onward)
    return Page(rows, onward, back)


def iter_requests(session: Session, filters: RequestFilter | None = None, *,
                  page: int = _MAX_PAGE) -> Iterator[dict[str, Any]]:
    """Every matching request, newest first, a page at a time (for export)."""
    before = None
    while True:
        result = list_requests(session, filters, before=before, limit=page)
        yield from result.rows
        if result.next_before is None:
            return
        before = result.next_before


def _record(row: Record) -> dict[str, Any]:
    return {"id": row.id, "instance_id": row.instance_id, "seq": row.seq, "kind": row.kind,
            "at": row.at.isoformat(), "request_id": row.request_id, "session": row.session,
            "data": json.loads(row.data), "hash": row.hash, "prev_hash": row.prev_hash,
            "sealed": row.seal is not None}


def _body(session: Session, digest: str | None) -> dict[str, Any] | None:
    if digest is None:
        return None
    content = session.scalar(select(Body.content).where(Body.sha256 == digest))
    if content is None:
        return {"sha256": digest, "missing": True}
    return {"sha256": digest, "size": len(content), "text": content.decode("utf-8", "replace")}


def request_detail(session: Session, request_row_id: int) -> dict[str, Any]:
    """A request with every record about it (request, responses, events) and its stored bodies."""
    row = session.get(RequestIndex, request_row_id)
    if row is None:
        raise AuditError(f"no request with id {request_row_id}")
    records = session.scalars(select(Record).where(Record.request_id == row.request_id).order_by(Record.id))
    return _summary(row) | {
        "records": [_record(r) for r in records],
        "request_body": _body(session, row.request_body),
        "response_body": _body(session, row.response_body),
    }


def session_timeline(session: Session, session_id: str, *, after: int | None = None,
                     limit: int = _MAX_PAGE) -> list[dict[str, Any]]:
    """A session's records in time order: requests, responses, approvals; ``after`` a record id, to page."""
    query = select(Record).where(Record.session == session_id)
    if after is not None:
        cursor_at = session.scalar(select(Record.at).where(Record.id == after))
        if cursor_at is None:
            raise AuditError(f"no record with id {after} to page from")
        query = query.where(tuple_(Record.at, Record.id) > tuple_(cursor_at, after))
    rows = session.scalars(query.order_by(Record.at, Record.id).limit(limit))
    return [_record(r) for r in rows]


def model_loads(session: Session, *, before: int | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Engine model loads, loaded and refused, newest first."""
    query = select(Record).where(Record.kind == "model_load")
    if before is not None:
        cursor_at = session.scalar(select(Record.at).where(Record.id == before))
        query = query.where(tuple_(Record.at, Record.id) < tuple_(cursor_at, before))
    rows = session.scalars(query.order_by(Record.at.desc(), Record.id.desc()).limit(limit))
    return [_record(r) for r in rows]


def stats(session: Session, filters: RequestFilter | None = None, *, top: int = 20) -> dict[str, Any]:
    """Counts by decision, agent and rule, and latency percentiles, of the requests ``filters`` select."""
    matching = _query(filters or RequestFilter(), None, False, session).order_by(None).subquery()
    total = session.scalar(select(func.count()).select_from(matching)) or 0

    def grouped(column: Any, query: Select[Any]) -> dict[str, int]:
        counted = query.group_by(column).order_by(func.count().desc(), column).limit(top)
        return {str(k): v for k, v in session.execute(counted)}

    return {
        "requests": total,
        "by_decision": grouped(matching.c.decision, select(matching.c.decision, func.count())),
        "by_agent": grouped(matching.c.agent, select(matching.c.agent, func.count())),
        "by_rule": grouped(RequestRule.rule, select(RequestRule.rule, func.count()).join(
            matching, matching.c.id == RequestRule.request_row_id)),
        "latency_ms": _percentiles(session, matching.c.latency_us, (50, 99)),
    }


def _percentiles(session: Session, column: Any, points: tuple[int, ...]) -> dict[str, float | None]:
    known = session.scalar(select(func.count(column))) or 0
    out: dict[str, float | None] = {}
    for p in points:
        if not known:
            out[f"p{p}"] = None
            continue
        rank = min(known - 1, max(0, -(-p * known // 100) - 1))  # nearest-rank percentile
        value = session.scalar(select(column).where(column.is_not(None)).order_by(column).offset(rank).limit(1))
        out[f"p{p}"] = round(value / 1000, 3) if value is not None else None
    return out
