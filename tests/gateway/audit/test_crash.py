"""Durability: a gateway killed with SIGKILL loses no request whose record_request had returned."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.audit.db import open_database
from gateway.audit.models import Record
from gateway.audit.state import AuditState
from gateway.audit.verify import verify_audit
from gateway.audit.writer import AuditWriter
from gateway.errors import AuditError

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("front", ["thread", "process"])
def test_every_acknowledged_request_survives_sigkill(audit_url: str, home: Path, front: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.gateway.audit.crash_child", audit_url, str(home), front],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "ready"
        printed = []
        while len(printed) < 400:
            line = child.stdout.readline()
            assert line, "the child stopped before it was killed"
            printed.append(line.strip())
        child.send_signal(signal.SIGKILL)
        printed += [line.strip() for line in child.stdout]  # acknowledged before the kill, still in the pipe
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    reopen(audit_url, home).close()  # the start check accepts the database after the crash
    db = open_database(audit_url)
    with db.sessions() as s:
        recorded = set(s.scalars(select(Record.request_id).where(Record.kind == "request")))
        events = [json.loads(data)["event"] for data in s.scalars(
            select(Record.data).where(Record.kind == "event").order_by(Record.seq))]
    if front == "process":  # the child outlives the gateway to flush, and says that it was not a clean stop
        assert events[-4:] == ["gateway.lost", "gateway.stop", "gateway.start", "gateway.stop"], events
    missing = [rid for rid in printed if rid not in recorded]
    assert not missing, f"{len(missing)} acknowledged requests are not in the database: {missing[:5]}"
    report = verify_audit(db, state=AuditState.open(home, create=False))
    db.close()
    assert report.requests == len(recorded) >= len(printed)


def reopen(url: str, home: Path) -> AuditWriter:
    """The writer again, once the killed process's writer child (which outlives it to flush) has let go of the lock."""
    deadline = time.monotonic() + 15
    while True:
        try:
            return AuditWriter.open(url, home=home)
        except AuditError as exc:
            if "another gateway process" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
