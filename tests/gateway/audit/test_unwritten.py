"""Records kept in the state folder while the database is down come back exactly as they were built."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.audit.records import response_entry
from gateway.audit.unwritten import keep_unwritten, read_unwritten
from gateway.errors import AuditError
from tests.gateway.audit.conftest import response_event


def test_kept_records_round_trip(tmp_path: Path) -> None:
    entry = response_entry(response_event(1), at=datetime(2025, 1, 31, tzinfo=UTC), latency_us=7, session="s",
                           body=b"\x00\xffbinary")
    path = tmp_path / "unwritten.jsonl"
    assert read_unwritten(path) == []
    keep_unwritten(path, [entry])
    keep_unwritten(path, [entry])  # appended, not replaced
    assert read_unwritten(path) == [entry, entry]
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_damaged_line_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "unwritten.jsonl"
    path.write_text('{"kind": "response"}\n')
    with pytest.raises(AuditError, match="line 1 is malformed"):
        read_unwritten(path)
