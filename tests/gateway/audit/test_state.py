"""The state folder: a stable instance id, a private key, and witness files that survive torn writes."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.audit.state import AuditState, Head
from gateway.errors import AuditError


def test_the_instance_and_its_key_persist(home: Path) -> None:
    first = AuditState.open(home)
    again = AuditState.open(home)
    assert again.instance_id == first.instance_id and again.key_id == first.key_id
    key = home / "audit" / "signing.key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (home / "audit" / "signing.pub.pem").read_text() == first.public_pem


def test_open_without_create_and_a_missing_key_are_errors(home: Path) -> None:
    with pytest.raises(AuditError, match="no instance.json"):
        AuditState.open(home, create=False)
    AuditState.open(home)
    (home / "audit" / "signing.key.pem").unlink()
    with pytest.raises(AuditError, match="signing key"):
        AuditState.open(home)  # never a fresh key: it could not verify the old seals


def test_binding_is_once_and_for_all(home: Path) -> None:
    state = AuditState.open(home)
    state.bind("db-1")
    state.bind("db-1")
    assert AuditState.open(home).database_id == "db-1"
    with pytest.raises(AuditError, match="belongs to audit database db-1"):
        state.bind("db-2")


def test_head_and_witness(home: Path) -> None:
    state = AuditState.open(home)
    state.bind("db-1")
    assert state.read_head() is None and state.read_witness() == ([], [])
    state.write_head(Head(5, "a" * 64))
    state.write_head(Head(12, "b" * 64))  # overwritten in place
    assert state.read_head() == Head(12, "b" * 64)
    state.append_witness(12, "b" * 64, datetime(2025, 1, 1, tzinfo=UTC), "c2ln")
    path = home / "audit" / "witness.jsonl"
    with open(path, "ab") as f:
        f.write(b"not json\n" + json.dumps({"database": "db-other", "instance": "x", "seq": 1, "hash": "h",
                                            "at": "t", "seal": "s"}).encode() + b"\n" + b'{"database": "db-1", "se')
    entries, bad = state.read_witness()
    assert [(e.seq, e.hash, e.line) for e in entries] == [(12, "b" * 64, 1)]  # other database, torn tail skipped
    assert bad == ["witness line 2: Expecting value: line 1 column 1 (char 0)"]
    state.close()


def test_one_writer_per_instance(home: Path) -> None:
    state, other = AuditState.open(home), AuditState.open(home)
    state.acquire_writer_lock()
    with pytest.raises(AuditError, match="another gateway process"):
        other.acquire_writer_lock()
    state.close()
    other.acquire_writer_lock()
    other.close()
