"""SQLite's WAL checkpoints on a thread of their own, so that no commit waits for one.

SQLite copies its write-ahead log back into the database file, and fsyncs that file, whenever a commit
leaves the log over 1000 pages, on the committing connection: with the request index's indexes a commit
writes tens of pages, so every few dozen commits one request waited for the copy. The writer's
connection turns that off (``wal_autocheckpoint = 0``) and this thread checkpoints instead: PASSIVE
ones, which neither wait for the writer nor block it (SQLite runs them without Python's lock). When the
writer never paused long enough for one to finish and the log passed ``restart_pages``, a RESTART
checkpoint waits for a gap between two commits (the next commit waits for it, on the busy timeout), so
that the log starts again from its beginning instead of growing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from gateway.audit.db import AuditDatabase

__all__ = ["WAL_AUTOCHECKPOINT_OFF", "WalCheckpointer"]

log = logging.getLogger("modelgate.audit")

WAL_AUTOCHECKPOINT_OFF = "PRAGMA wal_autocheckpoint = 0"
"""For the writer's connection, once a ``WalCheckpointer`` runs beside it."""


class WalCheckpointer:
    def __init__(self, db: AuditDatabase, *, interval_s: float = 0.5, restart_pages: int = 16384) -> None:
        self._db, self._interval_s, self._restart_pages = db, interval_s, restart_pages
        self._stop = threading.Event()
        self._connection: Any = None
        self._thread = threading.Thread(target=self._run, name="modelgate-audit-checkpoint", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._checkpoint()
            except Exception as exc:  # noqa: BLE001 - the database failing is the writer's to report
                log.debug("WAL checkpoint failed (retried): %s", exc)
                self._drop()
        self._drop()

    def _checkpoint(self) -> tuple[int, int]:
        """Checkpoint what the log holds; (pages in the log, pages copied back) as SQLite reports them."""
        if self._connection is None:
            raw = self._db.engine.raw_connection()
            self._connection = raw.driver_connection
            raw.detach()
        _, pages, copied = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if pages >= self._restart_pages:
            _, pages, copied = self._connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        return pages, copied

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None
