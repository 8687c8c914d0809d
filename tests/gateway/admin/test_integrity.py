"""Verification off the request path: one run at a time, its result kept, tampering and errors reported."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from gateway.admin.integrity import IntegrityChecker
from gateway.audit.db import open_database
from tests.gateway.admin.seed import Seeded


def test_a_clean_log_verifies_and_the_checkpoint_matches_the_witness(seeded: Seeded) -> None:
    db = open_database(seeded.url)
    try:
        checker = IntegrityChecker(db, seeded.home)
        assert checker.last is None and checker.running_since is None
        assert checker.start()
        result = checker.wait(60)
        assert result is not None and result.ok and result.report is not None
        assert result.report.requests == 43 and result.report.witness_entries
        (newest, *_) = checker.checkpoints()
        witness = checker.witness()
        assert witness is not None and (newest["seq"], newest["hash"]) == (witness.seq, witness.hash)
        assert newest["sealed"] and newest["data"]["reason"] == "shutdown"
    finally:
        db.close()


def test_tampering_is_reported_with_the_first_bad_record(seeded: Seeded) -> None:
    db = open_database(seeded.url)
    try:
        with db.engine.begin() as connection:
            target = connection.execute(text("SELECT id FROM audit_log WHERE request_id = 'hijack-2' AND "
                                             "kind = 'response'")).scalar()
            connection.execute(text("UPDATE audit_log SET data = replace(data, 'exfil@evil.example', "
                                    "'nobody@example.com') WHERE request_id = 'hijack-2' AND kind = 'response'"))
        checker = IntegrityChecker(db, seeded.home)
        checker.start()
        result = checker.wait(60)
        assert result is not None and not result.ok
        assert (result.problems[0].what, result.problems[0].id) == ("modified", target)
    finally:
        db.close()


def test_one_run_at_a_time_and_a_missing_state_folder_is_an_error_not_a_pass(seeded: Seeded, tmp_path: Path) -> None:
    db = open_database(seeded.url)
    try:
        checker = IntegrityChecker(db, tmp_path / "no-such-home")
        first, second = checker.start(), checker.start()
        result = checker.wait(60)
        assert first and (not second or result is not None)
        assert result is not None and not result.ok and not result.problems
        assert result.error is not None and "holds no gateway audit state" in result.error
    finally:
        db.close()
