"""Linking records into an instance's chain, and finding where the chain stands.

Each record's hash covers its place (instance, seq), its columns and its content, and links to the
previous record's hash (``canonical.record_hash``). The last record of every commit carries a seal:
the instance key's signature over (database, instance, seq, hash). A record after the last seal was
not written by the gateway, whatever its hash says.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.audit.canonical import GENESIS, record_hash
from gateway.audit.index import clip
from gateway.audit.models import PruneAnchor, Record
from gateway.audit.records import Entry
from gateway.audit.state import Head, seal_message

__all__ = ["chain_start", "link", "load_head"]


def chain_start(session: Session, instance_id: str) -> tuple[Head, PruneAnchor | None]:
    """Where the instance's chain begins: after its latest prune anchor, else at the genesis."""
    anchor = session.scalars(
        select(PruneAnchor).where(PruneAnchor.instance_id == instance_id)
        .order_by(PruneAnchor.first_seq.desc(), PruneAnchor.id.desc()).limit(1)
    ).first()
    if anchor is None:
        return Head(0, GENESIS), None
    return Head(anchor.first_seq - 1, anchor.prev_hash), anchor


def load_head(session: Session, instance_id: str) -> Head:
    """The instance's last record in the database (or where its chain starts, if it has none left)."""
    last = session.execute(
        select(Record.seq, Record.hash).where(Record.instance_id == instance_id)
        .order_by(Record.seq.desc()).limit(1)
    ).first()
    if last is not None:
        return Head(last.seq, last.hash)
    return chain_start(session, instance_id)[0]


def link(
    entries: Sequence[Entry], head: Head, *, instance_id: str, database_id: str, sign: Callable[[bytes], str],
) -> tuple[list[dict[str, Any]], Head]:
    """``audit_log`` rows for ``entries`` after ``head``, the last one sealed, and the new head."""
    rows: list[dict[str, Any]] = []
    seq, prev = head.seq, head.hash
    for entry in entries:
        seq += 1
        data_text = entry.data_text
        request_id, session = clip(entry.request_id, 128), clip(entry.session)
        digest = record_hash(instance=instance_id, seq=seq, kind=entry.kind, at=entry.at, request_id=request_id,
                             session=session, prev=prev, data_text=data_text)
        rows.append({"instance_id": instance_id, "seq": seq, "kind": entry.kind, "at": entry.at,
                     "request_id": request_id, "session": session, "data": data_text, "prev_hash": prev,
                     "hash": digest, "seal": None})
        prev = digest
    if rows:
        rows[-1]["seal"] = sign(seal_message(database_id, instance_id, seq, prev))
    return rows, Head(seq, prev)
