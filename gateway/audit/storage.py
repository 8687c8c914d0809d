"""One group commit's worth of writing: records linked and inserted, bodies stored once, the index kept.

The writer thread calls ``write_entries`` inside a transaction (``WriterConnection``); everything here
either lands together or not at all. A request's index row is kept in memory once written
(``RecentRows``), so that its response, which comes milliseconds later, is folded into it without
reading it back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.audit.chain import link
from gateway.audit.index import columns, fold_response, request_row, row_from_columns
from gateway.audit.models import AuditInstance, RequestIndex, RequestRule, RequestTool
from gateway.audit.pending import Committed, Pending, Row, settle_all
from gateway.audit.records import Entry, event_entry, request_key
from gateway.audit.sql import WriterConnection
from gateway.audit.state import AuditState, Head
from gateway.errors import AuditError, AuditUnavailable

__all__ = ["Batch", "RecentRows", "fetch_rows", "register_instance", "write_entries"]


@dataclass
class Batch:
    """What a committed transaction changed, for the writer to apply once the commit returned."""

    head: Head
    committed: list[tuple[Pending, Committed]] = field(default_factory=list)
    checkpoint: tuple[int, str, datetime, str] | None = None
    """(seq, hash, at, seal) of the checkpoint record, for the witness file."""
    rows: dict[str, Row] = field(default_factory=dict)
    """Index rows written or completed, by request id."""


class RecentRows:
    """The index rows this writer wrote last, by request id: the oldest go first once ``limit`` are held."""

    def __init__(self, limit: int = 4096) -> None:
        self._rows: dict[str, Row] = {}
        self._limit = limit

    def get(self, request_id: str) -> Row | None:
        return self._rows.get(request_id)

    def clear(self) -> None:
        self._rows.clear()

    def update(self, rows: Mapping[str, Row]) -> None:
        """Called once a commit returned: what it wrote is what the database holds."""
        for request_id, row in rows.items():
            self._rows.pop(request_id, None)
            self._rows[request_id] = row
        while len(self._rows) > self._limit:
            del self._rows[next(iter(self._rows))]


def register_instance(session: Session, state: AuditState) -> None:
    """Record the instance's public key in the database; a different key already there is refused."""
    known = session.get(AuditInstance, state.instance_id)
    if known is None:
        session.add(AuditInstance(instance_id=state.instance_id, public_key=state.public_pem, key_id=state.key_id,
                                  created_at=datetime.now(UTC)))
    elif known.public_key.strip() != state.public_pem.strip():
        raise AuditError(f"the database registers another key for instance {state.instance_id} "
                         f"({known.key_id}, not {state.key_id}); run `modelgate audit verify`")


def write_entries(
    sql: WriterConnection, cursor: Any, items: Sequence[Pending], head: Head, *, recent: RecentRows,
    state: AuditState, checkpoint: str | None, stopping: bool, since_checkpoint: int,
) -> Batch:
    """Build, link and insert ``items`` after ``head`` (plus a stop event and a checkpoint when due).

    A response folds into its request's index row as this writer last wrote it (``recent``, else read
    back), provided the row is still in the database: one pruned meanwhile is not written again.
    """
    wanted = {i.request_id for i in items if _kind(i) == "response" and i.request_id is not None}
    bases = _bases(sql, cursor, wanted, recent)
    live = _unique_requests(sql, cursor, [item for item in items if _build(item, bases)])
    entries = [item.entry for item in live if item.entry is not None]
    at = datetime.now(UTC)
    if stopping:
        entries.append(event_entry("gateway.stop", at=at, data={"instance": state.instance_id}))
    if checkpoint:
        entries.append(Entry.of("checkpoint", at, {"through_seq": head.seq + len(entries), "reason": checkpoint,
                                                   "records": since_checkpoint + len(entries)}))
    if not entries:
        return Batch(head)
    if state.database_id is None:
        raise AuditError(f"the state folder {state.root} is not bound to a database")
    rows, new_head = link(entries, head, instance_id=state.instance_id, database_id=state.database_id,
                          sign=state.sign)
    bodies = {digest: content for e in entries for digest, content in e.bodies}
    if bodies:
        cursor.executemany(sql.insert_body, [{"sha256": k, "content": v} for k, v in bodies.items()])
    ids = sql.insert_log(cursor, rows)
    batch = Batch(new_head)
    _index(sql, cursor, entries, ids, rows, bases, batch)
    batch.committed = [(item, Committed(ids[n], rows[n]["seq"], rows[n]["hash"])) for n, item in enumerate(live)]
    if checkpoint:
        last = rows[-1]
        batch.checkpoint = (last["seq"], last["hash"], last["at"], last["seal"])
    return batch


def _bases(sql: WriterConnection, cursor: Any, wanted: set[str], recent: RecentRows) -> dict[str, Row]:
    cached = {rid: row for rid in wanted if (row := recent.get(rid)) is not None}
    there = sql.existing(cursor, "audit_requests", "id", [row["id"] for row in cached.values()])
    bases = {rid: row for rid, row in cached.items() if row["id"] in there}
    if missing := wanted - cached.keys():  # after a restart, or evicted: read back (rare)
        with sql.db.sessions() as session:
            bases |= fetch_rows(session, missing)
    return bases


def _unique_requests(sql: WriterConnection, cursor: Any, items: list[Pending]) -> list[Pending]:
    """Refuse a request whose id is recorded already (a retried or replayed id), not the whole commit."""
    keys = {id(item): request_key(item.entry.request_id or "") for item in items
            if item.entry is not None and item.entry.kind == "request"}
    if not keys:
        return items
    taken = sql.existing(cursor, "audit_requests", "request_id", sorted(set(keys.values())))
    live = []
    for item in items:
        key = keys.get(id(item))
        if key is not None and key in taken:
            settle_all([(item, AuditUnavailable(f"request id {key!r} is recorded already; ids must be unique"))])
            continue
        if key is not None:
            taken.add(key)
        live.append(item)
    return live


def _kind(item: Pending) -> str:
    return item.entry.kind if item.entry is not None else item.kind


def _build(item: Pending, bases: Mapping[str, Row]) -> bool:
    if item.entry is not None:
        return True
    if item.build is None:
        return False
    try:
        item.entry = item.build(bases.get(item.request_id) if item.request_id else None)
    except (ValueError, TypeError, KeyError) as exc:  # a record that has no canonical form: refuse its request
        settle_all([(item, AuditUnavailable(f"this {item.kind} cannot be recorded: {exc}"))])
        item.kind, item.build = "failed", None
        return False
    return True


def _index(sql: WriterConnection, cursor: Any, entries: Sequence[Entry], ids: Sequence[int],
           rows: Sequence[Row], bases: Mapping[str, Row], batch: Batch) -> None:
    new_rows: dict[str, Row] = {}
    folded: dict[str, Row] = {}
    tools: list[Row] = []
    rules: list[Row] = []
    for entry, record_id, row in zip(entries, ids, rows, strict=True):
        if entry.kind == "request":
            index_row = request_row(record_id, row["instance_id"], row["at"], entry.data)
            new_rows[index_row["request_id"]] = index_row
            _children(index_row, index_row, tools, rules, new=True)
        elif entry.kind == "response" and entry.request_id is not None:
            rid = row["request_id"]
            base = folded.get(rid) or new_rows.get(rid) or bases.get(rid)
            if base is None:
                continue  # a response to a request this database never saw (pruned, or never recorded)
            folded[rid] = fold_response(base, record_id, entry.data)
            _children(base, folded[rid], tools, rules, new=False)
    if new_rows:
        cursor.executemany(sql.insert_index, [sql.timed(columns(r)) for r in new_rows.values()])
    if folded:
        cursor.executemany(sql.update_index, [sql.timed(columns(r)) | {"row_id": r["id"]} for r in folded.values()])
    if tools:
        cursor.executemany(sql.insert_tool, [sql.timed(r) for r in tools])
    if rules:
        cursor.executemany(sql.insert_rule, [sql.timed(r) for r in rules])
    batch.rows = new_rows | folded


def _children(before: Row, after: Row, tools: list[Row], rules: list[Row], *, new: bool) -> None:
    for names, key, out in (("tool_names", "tool", tools), ("rule_names", "rule", rules)):
        if not after[names]:
            continue
        added = after[names] if new else sorted(set(after[names]) - set(before[names]))
        out.extend({"request_row_id": after["id"], key: name, "at": after["at"]} for name in added)


def fetch_rows(session: Session, request_ids: set[str]) -> dict[str, Row]:
    """Index rows (as ``index.request_row`` shapes them) of requests recorded earlier, by request id."""
    if not request_ids:
        return {}
    table = RequestIndex.__table__
    found = {r["request_id"]: dict(r) for r in session.execute(
        select(table).where(table.c.request_id.in_(request_ids))).mappings()}
    if not found:
        return {}
    by_id = {row["id"]: row for row in found.values()}
    names: dict[int, tuple[list[str], list[str]]] = {i: ([], []) for i in by_id}
    for tool in session.scalars(select(RequestTool).where(RequestTool.request_row_id.in_(by_id))):
        names[tool.request_row_id][0].append(tool.tool)
    for rule in session.scalars(select(RequestRule).where(RequestRule.request_row_id.in_(by_id))):
        names[rule.request_row_id][1].append(rule.rule)
    return {rid: row_from_columns(row, *names[row["id"]]) for rid, row in found.items()}
