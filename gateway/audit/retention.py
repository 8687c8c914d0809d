"""Retention: old records go, the chain stays verifiable.

Pruning removes an instance's oldest records (and the index rows and bodies only they used) and
leaves a prune anchor, signed by the instance key, that says where the chain now starts: the first
remaining seq and the hash it links to. Verification starts from the anchor, so it passes after a prune
and still catches any change to what remains; removing more records than the anchor admits shows as a
deletion. Work is done in chunks, each its own transaction with its own anchor, so that a large prune
never holds the database long enough to make the gateway's commits time out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from gateway.audit.canonical import canonical_dumps, format_time
from gateway.audit.chain import chain_start, load_head
from gateway.audit.db import AuditDatabase
from gateway.audit.models import Body, PruneAnchor, Record, RequestIndex, RequestRule, RequestTool
from gateway.audit.state import AuditState
from gateway.errors import AuditError

__all__ = ["PruneResult", "anchor_message", "prune"]

_CHUNK = 5000


@dataclass(frozen=True)
class PruneResult:
    instance: str
    first_seq: int
    """The first seq that remains (the anchor's)."""
    records: int
    requests: int
    bodies: int

    def to_json(self) -> dict[str, object]:
        return {"instance": self.instance, "first_seq": self.first_seq, "records": self.records,
                "requests": self.requests, "bodies": self.bodies}


def anchor_message(database_id: str, anchor: PruneAnchor) -> bytes:
    """What a prune anchor's signature covers."""
    return canonical_dumps({
        "v": 1, "kind": "prune", "database": database_id, "instance": anchor.instance_id,
        "first_seq": anchor.first_seq, "prev_hash": anchor.prev_hash, "before": format_time(anchor.before),
        "pruned": anchor.pruned, "at": format_time(anchor.at),
    }).encode()


def prune(db: AuditDatabase, state: AuditState, *, before: datetime) -> PruneResult:
    """Delete this instance's records older than ``before``; only the instance's own key can sign the anchor."""
    if before.tzinfo is None:
        raise AuditError("give the prune time with a timezone (e.g. 2025-01-31T00:00:00Z)")
    if state.database_id != db.database_id:
        raise AuditError(f"the state folder {state.root} does not belong to this database")
    instance = state.instance_id
    with db.sessions() as session:
        target = session.scalar(select(func.min(Record.seq)).where(Record.instance_id == instance,
                                                                   Record.at >= before))
        if target is None:
            target = load_head(session, instance).seq + 1
    records = requests = bodies = 0
    first = None
    while True:
        with db.sessions() as session, session.begin():
            start, _ = chain_start(session, instance)
            if start.seq + 1 >= target:
                break
            cut = min(target, start.seq + 1 + _CHUNK)
            counts = _prune_chunk(session, db.database_id, state, before, start.seq + 1, cut)
        records, requests, bodies = records + counts[0], requests + counts[1], bodies + counts[2]
        first = cut
    if first is None:
        with db.sessions() as session:
            first = chain_start(session, instance)[0].seq + 1
    return PruneResult(instance, first, records, requests, bodies)


def _prune_chunk(session: Session, database_id: str, state: AuditState, before: datetime, low: int,
                 cut: int) -> tuple[int, int, int]:
    """Remove seqs [low, cut) and anchor the chain at ``cut``."""
    instance = state.instance_id
    prev_hash = session.scalar(select(Record.hash).where(Record.instance_id == instance, Record.seq == cut - 1))
    if prev_hash is None:
        raise AuditError(f"seq {cut - 1} of instance {instance} is missing: run `modelgate audit verify`")
    pruned = select(Record.id).where(Record.instance_id == instance, Record.seq >= low, Record.seq < cut)
    candidates = set(_body_refs(session.scalars(select(Record.data).where(
        Record.id.in_(pruned), Record.kind.in_(("request", "response"))))))
    request_rows = select(RequestIndex.id).where(RequestIndex.id.in_(pruned))
    session.execute(delete(RequestTool).where(RequestTool.request_row_id.in_(request_rows)))
    session.execute(delete(RequestRule).where(RequestRule.request_row_id.in_(request_rows)))
    requests = session.execute(delete(RequestIndex).where(RequestIndex.id.in_(pruned))).rowcount
    records = session.execute(delete(Record).where(Record.instance_id == instance, Record.seq >= low,
                                                   Record.seq < cut)).rowcount
    kept = set()
    if candidates:
        for column in (RequestIndex.request_body, RequestIndex.response_body):
            kept |= set(session.scalars(select(column).where(column.in_(candidates))))
    gone = candidates - kept
    bodies = session.execute(delete(Body).where(Body.sha256.in_(gone))).rowcount if gone else 0
    anchor = PruneAnchor(instance_id=instance, first_seq=cut, prev_hash=prev_hash, before=before, pruned=records,
                         at=datetime.now(UTC), signature="")
    anchor.signature = state.sign(anchor_message(database_id, anchor))
    session.execute(delete(PruneAnchor).where(PruneAnchor.instance_id == instance))
    session.add(anchor)
    return records, requests, bodies


def _body_refs(documents: Iterable[str]) -> Iterable[str]:
    for text in documents:
        body = json.loads(text).get("body")
        if body:
            yield body["stored"]
