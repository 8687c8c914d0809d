"""The audit writer: every request is committed before it is forwarded, without a commit per request.

The proxy awaits ``record_request`` on its event loop; a dedicated thread owns the database
connection (``WriterConnection``), takes everything queued since its last commit, links it into the
chain, writes it in one transaction and only then releases the waiting requests (group commit: sixteen
concurrent requests cost about one fsync, not sixteen). If the commit fails, each waiting request gets
``AuditUnavailable`` at once and the proxy answers 503. Responses are recorded without waiting: queued
with a request they share its commit; queued alone (between one request and the next) they are committed
at once without a disk sync of their own, which the next request's commit, or the database's own
background flush, gives them (SQLite: the WAL checkpointer every half second; PostgreSQL: its WAL
writer). So a request's commit on the critical path never carries the previous answer's pages, a crash
of the gateway loses no committed response, and a power loss only the last fraction of a second of them;
a request is always synced before it is forwarded. A response that cannot be written is retried, and one
still unwritten at shutdown is kept in the state folder and written at the next start: none is dropped.
On SQLite, WAL checkpoints run on a thread of their own (``WalCheckpointer``), so that no commit waits
for one.

The records come from a queue (``Inbox``): the proxy's event loop puts them there in this process, the
audit writer process (``gateway.audit.process``) reads them off its pipe on the writer thread itself.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from gateway.audit.chain import load_head
from gateway.audit.checkpointer import WAL_AUTOCHECKPOINT_OFF, WalCheckpointer
from gateway.audit.db import AuditDatabase, Synchronous, default_home, open_database
from gateway.audit.pending import Committed, Pending, Row, committed, settle_all
from gateway.audit.records import (
    DEFAULT_BODY_CAP,
    Entry,
    event_entry,
    model_load_entry,
    request_entry,
    request_key,
    response_entry,
)
from gateway.audit.sql import WriterConnection
from gateway.audit.state import AuditState, Head
from gateway.audit.storage import RecentRows, register_instance, write_entries
from gateway.audit.unwritten import keep_unwritten, read_unwritten
from gateway.audit.verify import start_problems
from gateway.errors import AuditError, AuditTampered, AuditUnavailable
from gateway.events import RequestEvent, ResponseEvent
from gateway.findings import Finding
from gateway.metrics import COMMIT_BUCKETS, Histogram, HistogramSnapshot

__all__ = ["AuditWriter", "Committed", "Inbox", "WriterConfig", "WriterStats"]

log = logging.getLogger("modelgate.audit")

_STOP = object()
_RETRY_INTERVAL_S = 1.0
_UNWRITTEN = "unwritten.jsonl"


@dataclass(frozen=True)
class WriterConfig:
    synchronous: Synchronous = "FULL"
    """SQLite only: FULL survives power loss; NORMAL only a crash of the gateway."""
    max_batch: int = 512
    checkpoint_every: int = 1000
    """Records between checkpoints (each is sealed, and appended to the witness file with an fsync)."""
    checkpoint_interval_s: float = 60.0
    """Seconds after which a checkpoint is written if anything was recorded since the last one."""
    commit_timeout_s: float = 5.0
    """How long ``record_request`` waits for its commit before the request is refused."""
    body_cap: int = DEFAULT_BODY_CAP

    def __post_init__(self) -> None:
        if self.synchronous not in ("FULL", "NORMAL"):
            raise AuditError(f"synchronous must be FULL or NORMAL, not {self.synchronous!r}")
        for name in ("max_batch", "checkpoint_every", "body_cap"):
            if getattr(self, name) < 1:
                raise AuditError(f"{name} must be at least 1")
        if self.checkpoint_interval_s <= 0 or self.commit_timeout_s <= 0:
            raise AuditError("checkpoint_interval_s and commit_timeout_s must be positive")


@dataclass(frozen=True, slots=True)
class WriterStats:
    records: int
    commits: int
    failed_commits: int
    pending_responses: int
    queue_depth: int
    """Records queued and not yet taken by the writer thread."""
    commit_seconds: HistogramSnapshot
    """Duration of each committed transaction."""


class Inbox(Protocol):
    """Where the writer thread takes its records from: ``queue.SimpleQueue``'s methods that it uses."""

    def put(self, item: Any) -> None: ...
    def get(self, block: bool = True, timeout: float | None = None) -> Any: ...
    def get_nowait(self) -> Any: ...
    def qsize(self) -> int: ...


class AuditWriter:
    """Owns an instance's chain in one database. Open with ``AuditWriter.open``; close at shutdown."""

    def __init__(self, db: AuditDatabase, state: AuditState, config: WriterConfig, inbox: Inbox | None = None,
                 ) -> None:
        self._db, self._state, self._config = db, state, config
        sqlite = db.engine.dialect.name == "sqlite"
        self._checkpointer = WalCheckpointer(db) if sqlite else None
        self._sql = WriterConnection(db, pragmas=(WAL_AUTOCHECKPOINT_OFF,) if sqlite else ())
        self._recent = RecentRows()
        self._queue: Inbox = inbox if inbox is not None else queue.SimpleQueue()
        self._retry: list[Pending] = []
        self._head: Head | None = None
        self._closed = False
        self._records = self._commits = self._failed = 0
        self._since_checkpoint = 0
        self._checkpoint_owed = False
        self._last_checkpoint = time.monotonic()
        self._failing: str | None = None
        self._commit_seconds = Histogram(COMMIT_BUCKETS)
        self._thread = threading.Thread(target=self._run, name="modelgate-audit-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)  # a gateway that exits without closing still flushes its responses

    @classmethod
    def open(
        cls, url: str | None = None, *, home: Path | None = None, config: WriterConfig | None = None,
        unsafe_continue_after_divergence: bool = False, inbox: Inbox | None = None,
    ) -> AuditWriter:
        """Open the database and the state folder, check the chain's head against the witness, and start.

        AuditTampered when the database no longer holds what the witness saw (unless
        ``unsafe_continue_after_divergence``, which records an ``audit.divergence`` event and goes on);
        AuditUnavailable when the first commit fails.
        """
        config = config or WriterConfig()
        home = home or default_home()
        state = AuditState.open(home)
        db = open_database(url, synchronous=config.synchronous, home=home)
        try:
            state.bind(db.database_id)
            state.acquire_writer_lock()
            try:
                with db.sessions() as session, session.begin():
                    register_instance(session, state)
                    problems = start_problems(session, state)
            except SQLAlchemyError as exc:
                raise AuditUnavailable(f"cannot read the audit database: {exc}") from exc
            if problems and not unsafe_continue_after_divergence:
                raise AuditTampered(problems)
            writer = cls(db, state, config, inbox)
        except BaseException:
            state.close()
            db.close()
            raise
        writer._start([str(p) for p in problems])
        return writer

    def _start(self, divergence: list[str]) -> None:
        at = datetime.now(UTC)
        try:
            kept = read_unwritten(self._state.root / _UNWRITTEN)
        except AuditError:
            self.close(raise_unwritten=False)
            raise
        # Kept from a run whose database failed at shutdown; "replay" items are not kept again if this fails.
        items = [Pending("replay", None, entry.request_id and request_key(entry.request_id), entry)
                 for entry in kept]
        if divergence:
            log.critical("UNSAFE: continuing an audit chain that diverged from its witness: %s", "; ".join(divergence))
            items.append(Pending("event", None, entry=event_entry(
                "audit.divergence", at=at, data={"problems": divergence, "unsafe_continue": True})))
        items.append(Pending("event", None, entry=event_entry(
            "gateway.start", at=at, data={"pid": os.getpid(), "instance": self._state.instance_id})))
        for item in items:
            self._queue.put(item)
        try:
            for item in items:
                item.future.result(timeout=self._config.commit_timeout_s * 2)  # type: ignore[call-arg]
        except (AuditUnavailable, concurrent.futures.TimeoutError) as exc:
            self.close(raise_unwritten=False)
            raise AuditUnavailable(f"the audit database cannot be written at start: {exc}") from None
        (self._state.root / _UNWRITTEN).unlink(missing_ok=True)

    # -- recording (called on the proxy's event loop) ----------------------------------------------

    async def record_request(
        self, event: RequestEvent, findings: Sequence[Finding] = (), *, body: bytes | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Committed:
        """Return once the request's record is committed; AuditUnavailable (answer 503) if it cannot be."""
        return await self._submit(self.request_item(event, findings, body=body, headers=headers,
                                                    loop=asyncio.get_running_loop()))

    def record_response(
        self, event: ResponseEvent, findings: Sequence[Finding] = (), *, body: bytes | None = None,
        headers: Iterable[tuple[str, str]] = (), latency_us: int | None = None,
    ) -> concurrent.futures.Future[Committed]:
        """Queue the response's record; the future may be ignored: a failed write is retried, never dropped.

        ``latency_us`` defaults to the time since ``record_request`` for the same request id.
        """
        item = self.response_item(event, findings, body=body, headers=headers, latency_us=latency_us)
        self.enqueue(item)
        return item.future  # type: ignore[return-value]

    async def record_model_load(self, load_record_json: Mapping[str, Any]) -> Committed:
        """Record an engine model load (``LoadRecord.to_json()``), loaded or refused."""
        return await self._submit(self.model_load_item(load_record_json, loop=asyncio.get_running_loop()))

    async def record_event(
        self, kind: str, *, data: Mapping[str, Any] | None = None, request_id: str | None = None,
        agent: str | None = None, session: str | None = None,
    ) -> Committed:
        """Record an approval or an integrity event (``kind`` such as ``approval.granted``)."""
        return await self._submit(self.event_item(kind, data=data, request_id=request_id, agent=agent,
                                                  session=session, loop=asyncio.get_running_loop()))

    # -- the records, for whoever queues them (the methods above, the audit writer process's inbox) --

    def request_item(
        self, event: RequestEvent, findings: Sequence[Finding] = (), *, body: bytes | None = None,
        headers: Iterable[tuple[str, str]] = (), loop: asyncio.AbstractEventLoop | None = None,
    ) -> Pending:
        at, headers = datetime.now(UTC), list(headers)
        cap = self._config.body_cap
        return Pending("request", lambda _base: request_entry(
            event, findings, at=at, body=body, headers=headers, body_cap=cap), event.request_id, loop=loop)

    def response_item(
        self, event: ResponseEvent, findings: Sequence[Finding] = (), *, body: bytes | None = None,
        headers: Iterable[tuple[str, str]] = (), latency_us: int | None = None,
    ) -> Pending:
        at, headers = datetime.now(UTC), list(headers)
        cap = self._config.body_cap

        def build(request: Row | None) -> Entry:
            latency = latency_us
            if latency is None and request is not None:
                latency = max(0, round((at - request["at"]).total_seconds() * 1e6))
            return response_entry(event, findings, at=at, latency_us=latency,
                                  session=request["session"] if request else None, body=body, headers=headers,
                                  body_cap=cap)

        return Pending("response", build, request_key(event.request_id))

    def model_load_item(self, load_record_json: Mapping[str, Any], *,
                        loop: asyncio.AbstractEventLoop | None = None) -> Pending:
        at = datetime.now(UTC)
        return Pending("model_load", lambda _base: model_load_entry(load_record_json, at=at), loop=loop)

    def event_item(
        self, kind: str, *, data: Mapping[str, Any] | None = None, request_id: str | None = None,
        agent: str | None = None, session: str | None = None, loop: asyncio.AbstractEventLoop | None = None,
    ) -> Pending:
        at = datetime.now(UTC)
        return Pending("event", lambda _base: event_entry(
            kind, at=at, data=data, request_id=request_id, agent=agent, session=session), request_id, loop=loop)

    async def _submit(self, item: Pending) -> Committed:
        self.enqueue(item)
        return await committed(item, self._config.commit_timeout_s)

    def enqueue(self, item: Pending) -> None:
        """Queue an item made by one of the ``*_item`` methods (``record_*`` do this themselves)."""
        if self._closed:
            raise AuditUnavailable("the audit writer is closed")
        self._queue.put(item)

    @property
    def stats(self) -> WriterStats:
        return WriterStats(self._records, self._commits, self._failed, len(self._retry), self._queue.qsize(),
                           self._commit_seconds.snapshot())

    @property
    def instance_id(self) -> str:
        return self._state.instance_id

    @property
    def database(self) -> AuditDatabase:
        return self._db

    def close(self, *, raise_unwritten: bool = True) -> None:
        """Flush, write a final checkpoint, stop. AuditUnavailable names where unwritten records were kept."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self._queue.put(_STOP)
        self._thread.join()
        self._sql.close()
        if self._checkpointer is not None:
            self._checkpointer.close()
        self._state.close()
        self._db.close()
        if self._retry:
            path = self._state.root / _UNWRITTEN
            keep_unwritten(path, [_built(item) for item in self._retry])
            count, self._retry = len(self._retry), []
            if raise_unwritten:
                raise AuditUnavailable(f"{count} audit records could not be written; they were kept in {path} "
                                       "and are written when the gateway starts again")

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    # -- the writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            items = self._next_batch()
            stopping = any(item is _STOP for item in items)
            items = [*self._retry, *(item for item in items if item is not _STOP)]
            self._retry = []
            checkpoint = self._checkpoint_reason(len(items), stopping)
            if not (items or checkpoint):
                continue
            try:
                self._write(items, checkpoint, stopping)
            except Exception as exc:  # a bug must fail the waiting requests, never kill the thread they wait on
                log.exception("audit writer failed on a batch")
                self._failed_write(items, exc)

    def _next_batch(self) -> list[Any]:
        timeout = None
        if self._since_checkpoint or self._checkpoint_owed:
            timeout = max(0.0, self._last_checkpoint + self._config.checkpoint_interval_s - time.monotonic())
        if self._retry:
            timeout = min(timeout if timeout is not None else _RETRY_INTERVAL_S, _RETRY_INTERVAL_S)
        try:
            items = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        self._drain(items)
        return items

    def _drain(self, items: list[Any]) -> None:
        while len(items) < self._config.max_batch:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def _checkpoint_reason(self, incoming: int, stopping: bool) -> str | None:
        if stopping:
            return "shutdown"
        pending = self._since_checkpoint + incoming
        if pending >= self._config.checkpoint_every:
            return "count"
        if (pending or self._checkpoint_owed) and (
                time.monotonic() - self._last_checkpoint >= self._config.checkpoint_interval_s):
            return "interval"
        return "retry" if self._checkpoint_owed and pending else None

    def _write(self, items: list[Pending], checkpoint: str | None, stopping: bool) -> None:
        started = time.perf_counter()
        synced = checkpoint is not None or stopping or any(_urgent(item) for item in items)
        try:
            if self._head is None:
                with self._db.sessions() as session:
                    self._head = load_head(session, self._state.instance_id)
            with self._sql.transaction(synced=synced) as cursor:
                result = write_entries(self._sql, cursor, items, self._head, recent=self._recent, state=self._state,
                                       checkpoint=checkpoint, stopping=stopping,
                                       since_checkpoint=self._since_checkpoint)
        except (*self._sql.unavailable, OSError, AuditError) as exc:  # the database, not the records
            self._failed_write(items, exc)
            return
        except self._sql.refused as exc:  # a record the database refuses: find it, let the others through
            self._head = None
            if len(items) > 1:
                for item in items:
                    self._write([item], None, False)
                if checkpoint or stopping:
                    self._write([], checkpoint, stopping)
            else:
                self._refused(items, exc)
            return
        self._head = result.head
        self._recent.update(result.rows)
        self._commit_seconds.observe(time.perf_counter() - started)
        self._commits += 1
        self._records += len(result.committed)
        if self._failing is not None:
            log.warning("audit database writable again after: %s", self._failing)
            self._failing = None
        if synced:  # never ahead of what is on disk: a power loss must not make a lost response look deleted
            try:
                self._state.write_head(result.head)
            except OSError as exc:
                log.error("cannot write the audit head witness %s: %s", self._state.root / "head", exc)
        self._since_checkpoint += len(result.committed)
        if result.checkpoint is not None:
            self._witness(result.checkpoint)
        settle_all(result.committed)

    def _witness(self, checkpoint: tuple[int, str, datetime, str]) -> None:
        seq, digest, at, seal = checkpoint
        try:
            self._state.append_witness(seq, digest, at, seal)
        except OSError as exc:
            log.error("cannot append checkpoint seq %d to the witness file (retried at the next commit): %s",
                      seq, exc)
            self._checkpoint_owed = True
            return
        self._checkpoint_owed = False
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()

    def _failed_write(self, items: list[Pending], exc: BaseException) -> None:
        self._head = None  # read again from the database: a commit whose outcome is unknown may have landed
        self._recent.clear()  # and so may the index rows it changed
        self._failed += 1
        reason = _reason(exc)
        if self._failing is None:
            log.error("the audit database cannot be written; requests are refused: %s", reason)
        self._failing = reason
        self._retry += [item for item in items if item.kind == "response"]
        error = AuditUnavailable(f"the audit database cannot be written: {reason}")
        settle_all((item, error) for item in items if item.kind != "response")


    def _refused(self, items: list[Pending], exc: BaseException) -> None:
        """A record the database refuses on its own: its request fails; a response is kept in the state folder."""
        reason = _reason(exc)
        log.error("the audit database refused a record: %s", reason)
        responses = [_built(item) for item in items if item.kind == "response"]
        if responses:
            keep_unwritten(self._state.root / _UNWRITTEN, responses)
        settle_all((item, AuditUnavailable(f"the audit database refused this record: {reason}")) for item in items)


def _urgent(item: Pending) -> bool:
    """Somebody waits for this record's commit (a request, an event): it is synced before they are told."""
    return item.kind != "response"


def _built(item: Pending) -> Entry:
    """A response's record even if the database was never reached (its request's row unknown: no session)."""
    if item.entry is None and item.build is not None:
        item.entry = item.build(None)
    if item.entry is None:
        raise AuditError(f"the {item.kind} record for {item.request_id!r} cannot be kept")
    return item.entry


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
