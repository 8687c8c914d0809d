"""Verification of the audit log: the chain, its seals, the witness, the prune anchors and the index.

``verify_audit`` returns a report of what it checked or raises ``AuditTampered`` listing every problem,
the first bad record first (its row id, seq and instance, and what is wrong with it):

* modified: a record's content or columns no longer give its hash, or its hash is not the one the
  next record links to;
* deleted: a gap in an instance's seqs (or a chain that starts later than its prune anchor says);
* inserted / reordered: a record whose row id is out of step with its seq (written later than the
  records after it), a seq before the chain's start, or records after the last seal;
* truncated: the witness file or the head file knows a record the database no longer has;
* bad_seal / bad_anchor: a signature that the instance's key did not make;
* index / body: the derived request index or a stored body that disagrees with the chain.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from attest.errors import AttestError, SignatureError
from attest.keys import PublicKey, as_public_key, verify_bytes
from gateway.audit.canonical import record_hash
from gateway.audit.chain import chain_start
from gateway.audit.db import AuditDatabase
from gateway.audit.index import fold_response, request_row, row_from_columns
from gateway.audit.models import AuditInstance, Body, PruneAnchor, Record, RequestIndex, RequestRule, RequestTool
from gateway.audit.retention import anchor_message
from gateway.audit.state import AuditState, Head, seal_message
from gateway.errors import AuditTampered

__all__ = ["InstanceReport", "Problem", "VerifyReport", "start_problems", "verify_audit"]

_PAGE = 1000


@dataclass(frozen=True)
class Problem:
    """One thing verification found wrong; ``id``/``seq``/``instance`` name the record where known."""

    what: str
    detail: str
    instance: str | None = None
    seq: int | None = None
    id: int | None = None

    def __str__(self) -> str:
        where = [f"id {self.id}" if self.id is not None else "", f"seq {self.seq}" if self.seq is not None else ""]
        place = " ".join(w for w in where if w)
        owner = f" of instance {self.instance}" if self.instance else ""
        return f"{self.what}: record {place}{owner}: {self.detail}" if place else f"{self.what}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InstanceReport:
    instance: str
    first_seq: int
    last_seq: int
    records: int
    seals: int
    key: str
    """"state folder" when the seal key came from the trusted state folder, else "database" (self-asserted)."""


@dataclass(frozen=True)
class VerifyReport:
    database_id: str
    instances: list[InstanceReport] = field(default_factory=list)
    requests: int = 0
    bodies: int = 0
    witness_entries: int | None = None
    """Checkpoints compared with the witness file; None when no state folder was given."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def verify_audit(
    db: AuditDatabase, *, state: AuditState | None = None, trusted_keys: Mapping[str, PublicKey] | None = None,
) -> VerifyReport:
    """Check everything; AuditTampered with the problems, first bad record first, if anything is wrong.

    ``state`` (the gateway's state folder) supplies the trusted key of its own instance and the witness;
    ``trusted_keys`` (instance id -> key) those of other instances writing the same database. Instances
    with neither are checked against the key the database itself registers, and the report says so.
    """
    problems: list[Problem] = []
    reports = []
    witness_count = None
    with _snapshot(db) as session:
        if state is not None:
            witness_count, witness_problems = _witness_problems(session, state, db.database_id)
            problems += witness_problems
        for instance in session.scalars(select(AuditInstance).order_by(AuditInstance.created_at)):
            key, source = _instance_key(instance, state, trusted_keys or {}, problems)
            report, found = _verify_chain(session, db.database_id, instance.instance_id, key, source)
            reports.append(report)
            problems += found
        problems += _unregistered(session)
        requests, found = _verify_index(session)
        problems += found
        bodies, found = _verify_bodies(session)
        problems += found
    if problems:
        problems.sort(key=lambda p: (p.seq is None, p.seq or 0))
        raise AuditTampered(problems)
    return VerifyReport(db.database_id, reports, requests, bodies, witness_count)


@contextmanager
def _snapshot(db: AuditDatabase) -> Iterator[Session]:
    """One read transaction for the whole verification, so that a gateway writing meanwhile (a response
    completing an index row between two queries) is never mistaken for tampering."""
    with db.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN")  # pysqlite starts none for reads; WAL keeps the snapshot
        else:
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with Session(bind=connection) as session:
            yield session
        connection.rollback()


def start_problems(session: Session, state: AuditState) -> list[Problem]:
    """What the writer checks at start: its own instance's head against the witness and head files."""
    if state.database_id is None:
        return []
    return _witness_problems(session, state, state.database_id)[1]


# -- keys and seals ---------------------------------------------------------------------------------


def _instance_key(instance: AuditInstance, state: AuditState | None, trusted: Mapping[str, PublicKey],
                  problems: list[Problem]) -> tuple[PublicKey | None, str]:
    registered = _load_key(instance.public_key)
    if state is not None and instance.instance_id == state.instance_id:
        if registered is None or _pem(registered) != state.public_pem.strip():
            problems.append(Problem("database", "the database registers another key for this instance than its "
                                    "state folder holds", instance.instance_id))
        return state.public_key, "state folder"
    if instance.instance_id in trusted:
        return trusted[instance.instance_id], "trusted key"
    if registered is None:
        problems.append(Problem("database", "the registered public key is unreadable", instance.instance_id))
    return registered, "database"


def _load_key(pem: str) -> PublicKey | None:
    try:
        return as_public_key(serialization.load_pem_public_key(pem.encode()))
    except (ValueError, TypeError, AttestError):
        return None


def _pem(key: PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode().strip()


def _signed(key: PublicKey | None, signature: str, message: bytes) -> bool:
    if key is None:
        return False
    try:
        verify_bytes(key, base64.b64decode(signature, validate=True), message)
    except (SignatureError, binascii.Error, ValueError):
        return False
    return True


# -- the chain ------------------------------------------------------------------------------------


def _verify_chain(session: Session, database_id: str, instance: str, key: PublicKey | None,
                  source: str) -> tuple[InstanceReport, list[Problem]]:
    problems: list[Problem] = []
    start, anchor = chain_start(session, instance)
    for old in session.scalars(select(PruneAnchor).where(PruneAnchor.instance_id == instance)):
        if not _signed(key, old.signature, anchor_message(database_id, old)):
            problems.append(Problem("bad_anchor", f"prune anchor {old.id} (chain from seq {old.first_seq}) is not "
                                    "signed by the instance key", instance, old.first_seq))
    expected, prev = start.seq + 1, start.hash
    last: Any = None
    unsealed_from: Any = None
    count = seals = 0
    rows = session.execute(select(Record.__table__).where(Record.instance_id == instance)
                           .order_by(Record.seq).execution_options(yield_per=2000)).mappings()
    for row in rows:
        count += 1
        if last is not None and row["id"] < last["id"]:
            what = "reordered" if row["prev_hash"] == last["hash"] else "inserted"
            problems.append(Problem(what, f"row id {last['id']} is larger than the id of the next record (seq "
                                    f"{row['seq']}, id {row['id']}): it was written later than the records it "
                                    "precedes", instance, last["seq"], last["id"]))
        if row["seq"] < expected:
            why = "before the chain's prune anchor" if anchor and row["seq"] < anchor.first_seq else "a repeated seq"
            problems.append(Problem("inserted", why, instance, row["seq"], row["id"]))
        elif row["seq"] > expected:
            missing = f"seq {expected}" if row["seq"] == expected + 1 else f"seqs {expected}..{row['seq'] - 1}"
            problems.append(Problem("deleted", f"{missing} missing before it", instance, row["seq"], row["id"]))
        elif row["prev_hash"] != prev and last is not None:
            problems.append(Problem("modified", "its hash is not the one the next record links to", instance,
                                    last["seq"], last["id"]))
        elif row["prev_hash"] != prev:
            problems.append(Problem("inserted", "it does not link to where the chain starts", instance, row["seq"],
                                    row["id"]))
        recomputed = record_hash(instance=instance, seq=row["seq"], kind=row["kind"], at=row["at"],
                                 request_id=row["request_id"], session=row["session"], prev=row["prev_hash"],
                                 data_text=row["data"])
        if recomputed != row["hash"]:
            problems.append(Problem("modified", "its content does not match its hash", instance, row["seq"],
                                    row["id"]))
        if row["seal"] is not None:
            seals += 1
            if not _signed(key, row["seal"], seal_message(database_id, instance, row["seq"], row["hash"])):
                problems.append(Problem("bad_seal", f"its seal does not verify with the instance key ({source})",
                                        instance, row["seq"], row["id"]))
            unsealed_from = None
        elif unsealed_from is None:
            unsealed_from = row
        expected, prev, last = max(expected, row["seq"] + 1), row["hash"], row
    if unsealed_from is not None:
        problems.append(Problem("inserted", f"it and every record after it up to seq {last['seq']} follow the last "
                                "seal: the gateway seals every commit", instance, unsealed_from["seq"],
                                unsealed_from["id"]))
    first = start.seq + 1
    report = InstanceReport(instance, first, last["seq"] if last is not None else start.seq, count, seals, source)
    problems.sort(key=lambda p: (p.seq if p.seq is not None else -1))
    return report, problems


def _unregistered(session: Session) -> list[Problem]:
    stray = session.execute(
        select(Record.instance_id, func.min(Record.seq), func.min(Record.id))
        .where(Record.instance_id.not_in(select(AuditInstance.instance_id))).group_by(Record.instance_id)
    ).all()
    return [Problem("inserted", "records of an instance the database does not register", i, s, r)
            for i, s, r in stray]


# -- witness and head ------------------------------------------------------------------------------


def _witness_problems(session: Session, state: AuditState, database_id: str) -> tuple[int, list[Problem]]:
    if state.database_id != database_id:
        bound = state.database_id or "no database"
        return 0, [Problem("database", f"the state folder {state.root} is bound to {bound}, not to this database "
                           f"({database_id}): the database was replaced, or give the right state folder")]
    instance = state.instance_id
    # The files first: the writer updates them after its commits, so the database read next is never behind.
    entries, malformed = state.read_witness()
    head = state.read_head()
    problems = [Problem("witness", reason, instance) for reason in malformed]
    start, _anchor = chain_start(session, instance)
    last_seq = session.scalar(select(func.max(Record.seq)).where(Record.instance_id == instance))
    db_end = last_seq if last_seq is not None else start.seq
    claims: list[tuple[str, Head]] = []
    for entry in entries:
        if entry.instance != instance:
            continue
        message = seal_message(database_id, instance, entry.seq, entry.hash)
        if not _signed(state.public_key, entry.seal, message):
            problems.append(Problem("witness", f"witness line {entry.line}: its seal does not verify", instance,
                                    entry.seq))
            continue
        claims.append((f"the witness checkpoint (line {entry.line})", Head(entry.seq, entry.hash)))
    if head is not None:
        claims.append(("the head file", head))
    for source, claim in claims:
        if claim.seq < start.seq:
            continue
        if claim.seq == start.seq:
            if claim.hash != start.hash:
                problems.append(Problem("bad_anchor", f"{source} has hash {claim.hash[:16]}... at seq {claim.seq}, "
                                        "which the prune anchor does not link to", instance, claim.seq))
            continue
        if claim.seq > db_end:
            problems.append(Problem("truncated", f"{source} has seq {claim.seq}, but the database ends at seq "
                                    f"{db_end}", instance, db_end + 1))
            continue
        row = session.execute(select(Record.id, Record.hash).where(
            Record.instance_id == instance, Record.seq == claim.seq)).first()
        if row is None:
            problems.append(Problem("deleted", f"{source} has this seq; the database does not", instance, claim.seq))
        elif row.hash != claim.hash:
            problems.append(Problem("modified", f"its hash differs from the one {source} recorded", instance,
                                    claim.seq, row.id))
    return len(claims), problems


# -- the derived index and the bodies ---------------------------------------------------------------


def _verify_index(session: Session) -> tuple[int, list[Problem]]:
    problems: list[Problem] = []
    count = 0
    for page in _index_pages(session):
        count += len(page)
        ids = [row["id"] for row in page]
        records = {r.id: r for r in session.execute(select(Record.id, Record.kind, Record.seq, Record.instance_id,
                                                           Record.at, Record.data).where(Record.id.in_(ids)))}
        responses: dict[str, list[Any]] = {}
        # By request id alone, so that the request_id index is the one used (kind is checked here).
        for r in session.execute(select(Record.id, Record.kind, Record.request_id, Record.data).where(
                Record.request_id.in_([row["request_id"] for row in page])).order_by(Record.id)):
            if r.kind == "response":
                responses.setdefault(r.request_id, []).append(r)
        tools: dict[int, list[str]] = {i: [] for i in ids}
        rules: dict[int, list[str]] = {i: [] for i in ids}
        for t in session.execute(select(RequestTool.request_row_id, RequestTool.tool, RequestTool.at)
                                 .where(RequestTool.request_row_id.in_(ids))):
            tools[t.request_row_id].append(t.tool)
        for r in session.execute(select(RequestRule.request_row_id, RequestRule.rule, RequestRule.at)
                                 .where(RequestRule.request_row_id.in_(ids))):
            rules[r.request_row_id].append(r.rule)
        for row in page:
            record = records.get(row["id"])
            if record is None or record.kind != "request":
                problems.append(Problem("index", f"index row for request {row['request_id']!r} points to no request "
                                        "record", id=row["id"]))
                continue
            expected = request_row(record.id, record.instance_id, record.at, json.loads(record.data))
            for response in responses.get(row["request_id"], []):
                expected = fold_response(expected, response.id, json.loads(response.data))
            actual = row_from_columns(dict(row), tools[row["id"]], rules[row["id"]])
            wrong = sorted(k for k in expected if expected[k] != actual.get(k))
            if wrong:
                shown = ", ".join(f"{k}={actual.get(k)!r} (chain: {expected[k]!r})" for k in wrong[:3])
                problems.append(Problem("index", f"the index row disagrees with the chain: {shown}",
                                        record.instance_id, record.seq, record.id))
    missing = session.execute(
        select(Record.id, Record.seq, Record.instance_id).outerjoin(RequestIndex, RequestIndex.id == Record.id)
        .where(Record.kind == "request", RequestIndex.id.is_(None)).order_by(Record.id).limit(10)
    ).all()
    problems += [Problem("index", "a request record with no index row", i, s, r) for r, s, i in missing]
    return count, problems


def _index_pages(session: Session) -> Iterator[list[Mapping[str, Any]]]:
    table = RequestIndex.__table__
    after = -1
    while True:
        page = list(session.execute(select(table).where(table.c.id > after).order_by(table.c.id)
                                    .limit(_PAGE)).mappings())
        if not page:
            return
        yield page
        after = page[-1]["id"]


def _verify_bodies(session: Session) -> tuple[int, list[Problem]]:
    problems: list[Problem] = []
    count = 0
    for body in session.execute(select(Body.sha256, Body.content).execution_options(yield_per=500)):
        count += 1
        if hashlib.sha256(body.content).hexdigest() != body.sha256:
            problems.append(Problem("body", f"body {body.sha256[:16]}... does not match its SHA-256"))
    for column in (RequestIndex.request_body, RequestIndex.response_body):
        dangling = session.execute(
            select(RequestIndex.id, column).outerjoin(Body, Body.sha256 == column)
            .where(column.is_not(None), Body.sha256.is_(None)).limit(10)
        ).all()
        problems += [Problem("body", f"body {digest[:16]}... is referenced but missing", id=row_id)
                     for row_id, digest in dangling]
    return count, problems
