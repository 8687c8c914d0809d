"""The writer's connection: times stored as SQLAlchemy stores them, ids in order, failures sorted by cause."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.audit.db import open_database
from gateway.audit.models import AuditInstance
from gateway.audit.sql import WriterConnection


def test_times_are_bound_as_sqlalchemy_binds_them(audit_url: str, tmp_path: Path) -> None:
    db = open_database(audit_url, home=tmp_path)
    sql = WriterConnection(db)
    whole_second = datetime(2025, 1, 31, 12, 0, 0, tzinfo=UTC)  # isoformat() would drop the fraction
    try:
        with sql.transaction() as cursor:
            cursor.execute(f"INSERT INTO audit_instances (instance_id, public_key, key_id, created_at) "
                           f"VALUES ('i', 'k', 'id', {'?' if sql.sqlite else '%s'})",
                           [sql.timed({"at": whole_second})["at"]])
        with db.sessions() as session:
            assert session.scalars(select(AuditInstance.created_at)).one() == whole_second
            assert session.scalars(select(AuditInstance.instance_id).where(
                AuditInstance.created_at >= whole_second)).all() == ["i"]  # compared as SQLAlchemy binds it
    finally:
        sql.close()
        db.close()


def test_ids_of_a_batch_come_back_in_order_and_a_refused_row_rolls_the_batch_back(audit_url: str,
                                                                                   tmp_path: Path) -> None:
    db = open_database(audit_url, home=tmp_path)
    sql = WriterConnection(db)
    at = datetime.now(UTC)
    rows = [{"instance_id": "i", "seq": n, "kind": "event", "at": at, "request_id": None, "session": None,
             "data": "{}", "prev_hash": "0" * 64, "hash": f"{n:064d}", "seal": None} for n in (1, 2, 3)]
    try:
        with sql.transaction() as cursor:
            first = sql.insert_log(cursor, rows[:2])
        with pytest.raises(sql.refused), sql.transaction() as cursor:
            sql.insert_log(cursor, [rows[2], rows[0]])  # seq 1 again: the unique (instance, seq) refuses it
        with sql.transaction() as cursor:
            last = sql.insert_log(cursor, rows[2:])
        assert first[1] == first[0] + 1 and last[0] > first[1]
        with sql.transaction() as cursor:
            assert sql.existing(cursor, "audit_log", "seq", [1, 2, 3, 4]) == {1, 2, 3}
    finally:
        sql.close()
        db.close()


def test_an_unsynced_commit_relaxes_durability_for_itself_only(audit_url: str, tmp_path: Path) -> None:
    db = open_database(audit_url, home=tmp_path)
    sql = WriterConnection(db)
    level = "PRAGMA synchronous" if sql.sqlite else "SHOW synchronous_commit"
    try:
        with sql.transaction() as cursor:
            synced = cursor.execute(level).fetchone()[0]
        with sql.transaction(synced=False) as cursor:
            relaxed = cursor.execute(level).fetchone()[0]
        with sql.transaction() as cursor:
            after = cursor.execute(level).fetchone()[0]
        assert (synced, relaxed, after) == ((2, 1, 2) if sql.sqlite else ("on", "off", "on"))
    finally:
        sql.close()
        db.close()
