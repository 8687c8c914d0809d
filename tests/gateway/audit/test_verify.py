"""Tampering with a real audit database, as someone with write access to it would, is caught and located."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Connection, delete, select, update

from attest.keys import generate_private_key, sign_bytes
from gateway.audit.canonical import record_hash
from gateway.audit.db import open_database
from gateway.audit.models import AuditInstance, Body, Record, RequestIndex
from gateway.audit.state import AuditState, seal_message
from gateway.audit.verify import Problem, verify_audit
from gateway.audit.writer import AuditWriter
from gateway.errors import AuditTampered
from tests.gateway.audit.conftest import fill, small_checkpoints


@pytest.fixture()
def log(audit_url: str, home: Path) -> str:
    """A closed log: 12 request/response pairs, an approval event in the middle, checkpoints every 10."""
    writer = AuditWriter.open(audit_url, home=home, config=small_checkpoints())
    fill(writer, 6)
    asyncio.run(writer.record_event("approval.granted", request_id="req-2", data={"by": "alice"}))
    fill(writer, 6, start=6)
    writer.close()
    return audit_url


def problems(url: str, home: Path, **kwargs: Any) -> list[Problem]:
    db = open_database(url)
    try:
        with pytest.raises(AuditTampered) as caught:
            verify_audit(db, state=AuditState.open(home, create=False), **kwargs)
    finally:
        db.close()
    return list(caught.value.problems)


def verifies(url: str, home: Path) -> None:
    db = open_database(url)
    try:
        verify_audit(db, state=AuditState.open(home, create=False))
    finally:
        db.close()


@pytest.fixture()
def raw(log: str) -> Iterator[Connection]:
    db = open_database(log)
    with db.engine.begin() as connection:
        yield connection
    db.close()


def row(connection: Connection, *where: Any) -> Any:
    return connection.execute(select(Record.__table__).where(*where).order_by(Record.seq)).mappings().first()


def test_an_untouched_log_verifies(log: str, home: Path) -> None:
    db = open_database(log)
    report = verify_audit(db, state=AuditState.open(home, create=False))
    db.close()
    (instance,) = report.instances
    assert instance.first_seq == 1 and instance.records == instance.last_seq and instance.key == "state folder"
    assert report.requests == 12 and report.witness_entries and report.witness_entries >= 3


def test_a_modified_column_names_the_record(log: str, home: Path, raw: Connection) -> None:
    target = row(raw, Record.kind == "request", Record.request_id == "req-4")
    raw.execute(update(Record).where(Record.id == target["id"]).values(session="someone-else"))
    raw.commit()
    first = problems(log, home)[0]
    assert (first.what, first.id, first.seq) == ("modified", target["id"], target["seq"])


def test_modified_content_names_the_record_and_the_index_disagrees(log: str, home: Path, raw: Connection) -> None:
    target = row(raw, Record.kind == "request", Record.request_id == "req-3")  # blocked (n % 7 == 3)
    raw.execute(update(Record).where(Record.id == target["id"]).values(
        data=target["data"].replace('"decision":"block"', '"decision":"allow"')))
    raw.commit()
    found = problems(log, home)
    assert (found[0].what, found[0].id) == ("modified", target["id"])
    assert any(p.what == "index" and p.id == target["id"] and "decision" in p.detail for p in found)


def test_a_deleted_record_is_named_by_the_gap(log: str, home: Path, raw: Connection) -> None:
    event = row(raw, Record.kind == "event", Record.request_id == "req-2")
    raw.execute(delete(Record).where(Record.id == event["id"]))
    raw.commit()
    first = problems(log, home)[0]
    assert (first.what, first.seq) == ("deleted", event["seq"] + 1)
    assert f"seq {event['seq']} missing" in first.detail


def test_a_forged_record_inserted_mid_chain_is_named(log: str, home: Path, raw: Connection) -> None:
    # A careful forger: renumber what follows, link the forgery to its predecessor with a correct hash.
    after = row(raw, Record.kind == "event", Record.request_id == "req-2")
    raw.execute(update(Record).where(Record.seq > after["seq"]).values(seq=-Record.seq))
    raw.execute(update(Record).where(Record.seq < 0).values(seq=-Record.seq + 1))
    seq, data = after["seq"] + 1, '{"event":"approval.granted","details":{"by":"mallory"}}'
    digest = record_hash(instance=after["instance_id"], seq=seq, kind="event", at=after["at"], request_id="req-5",
                         session=None, prev=after["hash"], data_text=data)
    forged = raw.execute(Record.__table__.insert().values(
        instance_id=after["instance_id"], seq=seq, kind="event", at=after["at"], request_id="req-5", session=None,
        data=data, prev_hash=after["hash"], hash=digest, seal=None).returning(Record.id)).scalar_one()
    raw.commit()
    first = problems(log, home)[0]
    assert (first.what, first.id, first.seq) == ("inserted", forged, seq)


def test_a_forged_record_appended_after_the_last_seal_is_named(log: str, home: Path, raw: Connection) -> None:
    last = raw.execute(select(Record.__table__).order_by(Record.seq.desc()).limit(1)).mappings().one()
    data = '{"event":"approval.granted","details":{}}'
    digest = record_hash(instance=last["instance_id"], seq=last["seq"] + 1, kind="event", at=last["at"],
                         request_id=None, session=None, prev=last["hash"], data_text=data)
    forged = raw.execute(Record.__table__.insert().values(
        instance_id=last["instance_id"], seq=last["seq"] + 1, kind="event", at=last["at"], request_id=None,
        session=None, data=data, prev_hash=last["hash"], hash=digest, seal=None).returning(Record.id)).scalar_one()
    raw.commit()
    first = problems(log, home)[0]
    assert (first.what, first.id) == ("inserted", forged) and "after the last seal" not in first.detail
    assert "follow the last seal" in first.detail


def test_two_swapped_records_are_named(log: str, home: Path, raw: Connection) -> None:
    a = row(raw, Record.kind == "request", Record.request_id == "req-1")
    b = row(raw, Record.kind == "request", Record.request_id == "req-8")
    raw.execute(update(Record).where(Record.id == a["id"]).values(seq=-1))
    raw.execute(update(Record).where(Record.id == b["id"]).values(**{k: v for k, v in a.items() if k != "id"}))
    raw.execute(update(Record).where(Record.id == a["id"]).values(**{k: v for k, v in b.items() if k != "id"}))
    raw.commit()
    first = problems(log, home)[0]
    assert (first.what, first.id, first.seq) == ("reordered", b["id"], a["seq"])


def _checkpoints(connection: Connection) -> list[Any]:
    return list(connection.execute(select(Record.__table__).where(Record.kind == "checkpoint")
                                   .order_by(Record.seq)).mappings())


def test_a_truncated_tail_with_its_last_checkpoints_is_detected(audit_url: str, home: Path) -> None:
    writer = AuditWriter.open(audit_url, home=home, config=small_checkpoints())
    fill(writer, 4)
    writer.close()
    end = max(r.seq for r in _all(audit_url))
    writer = AuditWriter.open(audit_url, home=home, config=small_checkpoints())

    async def events() -> None:
        for n in range(25):
            await writer.record_event("integrity.probe", data={"n": n})

    asyncio.run(events())
    writer.close()
    db = open_database(audit_url)
    with db.engine.begin() as connection:
        assert len([c for c in _checkpoints(connection) if c["seq"] > end]) >= 3
        connection.execute(delete(Record).where(Record.seq > end))
    db.close()
    first = problems(audit_url, home)[0]
    assert (first.what, first.seq) == ("truncated", end + 1)
    assert "database ends at seq" in first.detail


def test_truncation_after_the_last_checkpoint_is_detected_by_the_head(audit_url: str, home: Path) -> None:
    writer = AuditWriter.open(audit_url, home=home)
    fill(writer, 3)
    writer.close()
    end = max(r.seq for r in _all(audit_url))
    writer = AuditWriter.open(audit_url, home=home)  # no checkpoint until it closes

    async def events() -> None:
        for n in range(5):
            await writer.record_event("integrity.probe", data={"n": n})

    asyncio.run(events())
    db = open_database(audit_url)
    with db.engine.begin() as connection:
        connection.execute(delete(Record).where(Record.seq > end))
    found = problems(audit_url, home)
    writer.close()
    db.close()
    assert (found[0].what, found[0].seq) == ("truncated", end + 1) and "head file" in found[0].detail


def _all(url: str) -> list[Record]:
    db = open_database(url)
    with db.sessions() as s:
        rows = list(s.scalars(select(Record)))
    db.close()
    return rows


def test_a_forged_checkpoint_signature_is_named(log: str, home: Path, raw: Connection) -> None:
    target = _checkpoints(raw)[0]
    other = generate_private_key("ecdsa-p256")
    database_id = AuditState.open(home, create=False).database_id
    assert database_id is not None
    forged = base64.b64encode(sign_bytes(other, seal_message(database_id, target["instance_id"], target["seq"],
                                                             target["hash"]))).decode()
    raw.execute(update(Record).where(Record.id == target["id"]).values(seal=forged))
    raw.commit()
    first = problems(log, home)[0]
    assert (first.what, first.id, first.seq) == ("bad_seal", target["id"], target["seq"])


def test_a_key_swapped_in_the_database_does_not_make_forgeries_trusted(log: str, home: Path,
                                                                       raw: Connection) -> None:
    other = generate_private_key("ecdsa-p256")
    pem = other.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    raw.execute(update(AuditInstance).values(public_key=pem))
    raw.commit()
    assert problems(log, home)[-1].what == "database"


def test_an_edited_index_row_or_body_is_found(log: str, home: Path, raw: Connection) -> None:
    blocked = raw.execute(select(RequestIndex.id).where(RequestIndex.decision == "block")).scalars().first()
    raw.execute(update(RequestIndex).where(RequestIndex.id == blocked).values(decision="allow"))
    digest = raw.execute(select(Body.sha256).limit(1)).scalar_one()
    raw.execute(update(Body).where(Body.sha256 == digest).values(content=b"something else"))
    raw.commit()
    found = problems(log, home)
    assert any(p.what == "index" and p.id == blocked and "decision='allow'" in p.detail for p in found)
    assert any(p.what == "body" and digest[:16] in p.detail for p in found)


def test_a_replaced_database_is_not_verified_against_another_witness(log: str, home: Path, tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    AuditWriter.open(other, home=tmp_path / "other-home").close()
    first = problems(other, home)[0]
    assert first.what == "database" and "bound to" in first.detail
    verifies(log, home)


def test_verification_while_the_gateway_writes_finds_nothing(audit_url: str, home: Path) -> None:
    import threading

    writer = AuditWriter.open(audit_url, home=home, config=small_checkpoints())
    stop = threading.Event()

    def traffic() -> None:
        n = 0
        while not stop.is_set():
            fill(writer, 8, start=n)
            n += 8

    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        for _ in range(4):
            verifies(audit_url, home)
    finally:
        stop.set()
        thread.join()
        writer.close()
    verifies(audit_url, home)
