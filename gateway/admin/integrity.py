"""Chain verification for the integrity page: run in a worker thread, one at a time, the result kept with its time.

Verifying a million records takes a while and reads the whole log, so it never runs inside a page
request and never twice at once; the page shows the last result, how old it is, and whether a run is
going on. The last signed checkpoint is read on demand: the newest checkpoint record (one index
probe) and the newest line of the state folder's witness file for this instance.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from gateway.audit.db import AuditDatabase
from gateway.audit.models import Record
from gateway.audit.state import AuditState, WitnessEntry
from gateway.audit.verify import Problem, VerifyReport, verify_audit
from gateway.errors import AuditTampered, GatewayError

__all__ = ["IntegrityChecker", "IntegrityResult"]

log = logging.getLogger("modelgate.admin")


@dataclass(frozen=True)
class IntegrityResult:
    started: datetime
    seconds: float
    report: VerifyReport | None = None
    """Set when everything verified."""
    problems: tuple[Problem, ...] = ()
    """Set when the log did not verify (tampering, or an index that disagrees with the chain)."""
    error: str | None = None
    """Set when verification could not run (the database unreachable, the state folder unreadable)."""

    @property
    def ok(self) -> bool:
        return self.report is not None


class IntegrityChecker:
    """``start`` a verification of ``db`` against the state folder in ``home``; read ``last`` and ``running``."""

    def __init__(self, db: AuditDatabase, home: Path) -> None:
        self._db, self._home = db, home
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._since: datetime | None = None
        self._last: IntegrityResult | None = None

    @property
    def last(self) -> IntegrityResult | None:
        return self._last

    @property
    def running_since(self) -> datetime | None:
        with self._lock:
            return self._since if self._thread is not None else None

    def start(self) -> bool:
        """Start a run unless one is going on; True if this call started it."""
        with self._lock:
            if self._thread is not None:
                return False
            self._since = datetime.now(UTC)
            self._thread = threading.Thread(target=self._run, name="modelgate-admin-verify", daemon=True)
            self._thread.start()
            return True

    def wait(self, timeout: float | None = None) -> IntegrityResult | None:
        """The result of the run going on (or the last one), once it is done."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self._last

    def _run(self) -> None:
        started, clock = self._since or datetime.now(UTC), time.perf_counter()
        try:
            state = AuditState.open(self._home, create=False)
            try:
                report = verify_audit(self._db, state=state)
            finally:
                state.close()
            result = IntegrityResult(started, time.perf_counter() - clock, report=report)
        except AuditTampered as exc:
            log.critical("audit verification FAILED: %s", exc.reason)
            result = IntegrityResult(started, time.perf_counter() - clock, problems=exc.problems)
        except (GatewayError, OSError) as exc:
            result = IntegrityResult(started, time.perf_counter() - clock, error=str(exc))
        except Exception as exc:  # a bug must show on the page, not leave it "running" forever
            log.exception("audit verification crashed")
            result = IntegrityResult(started, time.perf_counter() - clock, error=f"{type(exc).__name__}: {exc}")
        with self._lock:
            self._last, self._thread = result, None

    def checkpoints(self, limit: int = 5) -> list[dict[str, Any]]:
        """The newest checkpoint records, newest first (of every instance writing this database)."""
        with self._db.sessions() as session:
            rows = session.scalars(select(Record).where(Record.kind == "checkpoint")
                                   .order_by(Record.at.desc(), Record.id.desc()).limit(limit))
            return [{"id": r.id, "instance_id": r.instance_id, "seq": r.seq, "at": r.at, "hash": r.hash,
                     "sealed": r.seal is not None, "data": json.loads(r.data)} for r in rows]

    def witness(self) -> WitnessEntry | None:
        """The newest checkpoint the state folder's witness file holds for this instance."""
        state = AuditState.open(self._home, create=False)
        try:
            entries, _bad = state.read_witness()
            mine = [e for e in entries if e.instance == state.instance_id]
            return mine[-1] if mine else None
        finally:
            state.close()
