"""The audit writer in a child process, so that building and committing records never holds the proxy's GIL.

``AuditProcess`` has the API the gateway uses from ``AuditWriter`` and runs an ``AuditWriter`` in a child
(``python -m gateway.audit.process``), over two pipes. The proxy pickles what a record is made of (the
event, findings, body, headers: a few microseconds), the child builds, redacts, chains and commits it,
and answers each record with its ``Committed`` (or the ``AuditUnavailable`` to refuse it with); a request
is forwarded only once that answer is back. Messages sent in one turn of the event loop go in one write,
and the child answers a commit's worth of records in one write, read on the proxy's loop like a socket.

The child follows its parent: at EOF on its pipe (the gateway closed it, or died, even by SIGKILL) it
commits what it received, flushes its responses and exits; SIGTERM on the parent's death
(``PR_SET_PDEATHSIG``) is a backstop for a pipe someone else holds open. If the child dies instead,
everything waiting and every later record gets ``AuditUnavailable`` (the gateway answers 503) and the
loss is logged as critical. It is not restarted: the dead child may have committed records it never
answered, and responses it held (already answered to agents) are gone with it; a new writer must take
the writer lock again, re-read the chain's head and check it against the witness, which is exactly what
a gateway start does, so the gateway stays closed until it is restarted, and the start check says
whether the log the child left is sound.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import ctypes
import fcntl
import itertools
import logging
import os
import pickle
import queue
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gateway.audit.db import AuditDatabase, default_home, open_database
from gateway.audit.pending import Committed, Pending, committed, settle_all
from gateway.audit.writer import AuditWriter, WriterConfig, WriterStats
from gateway.errors import AuditError, AuditUnavailable
from gateway.events import RequestEvent, ResponseEvent
from gateway.findings import Finding

__all__ = ["AuditLog", "AuditProcess"]

log = logging.getLogger("modelgate.audit")

_HEADER = struct.Struct("!I")
_PIPE_BYTES = 1 << 20
_F_SETPIPE_SZ = 1031
_PR_SET_PDEATHSIG = 1
_START_TIMEOUT_S = 60.0
"""Importing, opening the database, checking the chain against the witness and the first commit (which alone may
take twice ``commit_timeout_s``)."""
_CLOSE_TIMEOUT_S = 60.0


class AuditProcess:
    """An ``AuditWriter`` in a child process. Open with ``AuditProcess.open``; close at shutdown."""

    def __init__(self, child: subprocess.Popen[bytes], to_child: int, from_child: int, config: WriterConfig) -> None:
        self._child, self._to_child, self._from_child, self._config = child, to_child, from_child, config
        self._frames = _Frames()
        self._ids = itertools.count()
        self._lock = threading.Lock()  # the waiting records, the outbox, closed and lost
        self._read_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._waiting: dict[int, Pending] = {}
        self._outbox: list[tuple[Any, ...]] = []
        self._flush_loop: asyncio.AbstractEventLoop | None = None
        self._reading: asyncio.AbstractEventLoop | None = None
        self._ended = threading.Event()
        self._closed = False
        self._lost: str | None = None
        self._start_error: BaseException | None = None
        self._close_error: BaseException | None = None
        self._instance_id = ""
        self._db: AuditDatabase | None = None

    @classmethod
    def open(
        cls, url: str | None = None, *, home: Path | None = None, config: WriterConfig | None = None,
        unsafe_continue_after_divergence: bool = False,
    ) -> AuditProcess:
        """Start the child and open the writer there: ``AuditWriter.open``'s errors are raised here, as they are."""
        config = config or WriterConfig()
        home = home or default_home()
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        for fd in (to_child_w, from_child_w):
            _widen(fd)
        root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", "gateway.audit.process", str(to_child_r), str(from_child_w), str(os.getpid())],
                pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, env=os.environ | {"PYTHONPATH": path})
        except OSError as exc:
            for fd in (to_child_r, to_child_w, from_child_r, from_child_w):
                os.close(fd)
            raise AuditUnavailable(f"cannot start the audit writer process: {exc}") from exc
        os.close(to_child_r)
        os.close(from_child_w)
        os.set_blocking(to_child_w, False)
        os.set_blocking(from_child_r, False)
        front = cls(child, to_child_w, from_child_r, config)
        try:
            front._send([("open", url, str(home), config, unsafe_continue_after_divergence,
                          log.getEffectiveLevel())], deadline=time.monotonic() + _START_TIMEOUT_S)
            front._started(time.monotonic() + _START_TIMEOUT_S)
            front._db = open_database(url, synchronous=config.synchronous, home=home, migrate=False)
        except BaseException:
            front._abandon()
            raise
        atexit.register(front.close)  # a gateway that exits without closing still has its responses flushed
        return front

    def _started(self, deadline: float) -> None:
        """Wait for the child's first answer: its instance id, or the error ``AuditWriter.open`` raised there."""
        self._wait(lambda: bool(self._instance_id) or self._start_error is not None or self._ended.is_set(), deadline)
        if self._start_error is not None:
            raise self._start_error
        if not self._instance_id:
            raise AuditUnavailable(f"the audit writer process did not start: {self._lost or 'timed out'}")

    def _abandon(self) -> None:
        """Stop a child whose start failed: closed as usual once it has started its writer, so the log says so."""
        if self._instance_id:
            try:
                self.close()
            except AuditError as exc:
                log.error("closing the audit writer process after a failed start: %s", exc)
            return
        self._closed = True
        self._child.kill()
        self._child.wait()
        os.close(self._to_child)
        os.close(self._from_child)

    # -- recording (called on the proxy's event loop) ----------------------------------------------

    async def record_request(
        self, event: RequestEvent, findings: Sequence[Finding] = (), *, body: bytes | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Committed:
        """Return once the request's record is committed; AuditUnavailable (answer 503) if it cannot be."""
        return await self._submit("request", ("request", event, tuple(findings), body, list(headers)),
                                  event.request_id)

    def record_response(
        self, event: ResponseEvent, findings: Sequence[Finding] = (), *, body: bytes | None = None,
        headers: Iterable[tuple[str, str]] = (), latency_us: int | None = None,
    ) -> concurrent.futures.Future[Committed]:
        """Queue the response's record; the future may be ignored: a failed write is retried while the child lives
        (see the module's docstring for a child that dies)."""
        item = Pending("response", None, event.request_id)
        self._post(item, ("response", event, tuple(findings), body, list(headers), latency_us), _running_loop())
        return item.future  # type: ignore[return-value]

    async def record_model_load(self, load_record_json: Mapping[str, Any]) -> Committed:
        """Record an engine model load (``LoadRecord.to_json()``), loaded or refused."""
        return await self._submit("model_load", ("model_load", dict(load_record_json)))

    async def record_event(
        self, kind: str, *, data: Mapping[str, Any] | None = None, request_id: str | None = None,
        agent: str | None = None, session: str | None = None,
    ) -> Committed:
        """Record an approval or an integrity event (``kind`` such as ``approval.granted``)."""
        return await self._submit("event", ("event", kind, dict(data or {}), request_id, agent, session), request_id)

    async def _submit(self, kind: str, message: tuple[Any, ...], request_id: str | None = None) -> Committed:
        loop = asyncio.get_running_loop()
        if self._reading is not loop:
            self._read_on(loop)
        item = Pending(kind, None, request_id, loop=loop)
        self._post(item, message, loop)
        return await committed(item, self._config.commit_timeout_s)

    def _post(self, item: Pending, message: tuple[Any, ...], loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Queue ``message`` for the child; what one turn of ``loop`` queues goes in one write."""
        with self._lock:
            if self._closed or self._lost is not None:
                raise AuditUnavailable("the audit writer is closed" if self._closed
                                       else f"the audit writer process is gone: {self._lost}")
            ident = next(self._ids)
            self._waiting[ident] = item
            self._outbox.append((ident, *message))
            if loop is not None and self._flush_loop in (None, loop):
                if self._flush_loop is None:
                    self._flush_loop = loop
                    loop.call_soon(self._flush)
                return
        self._flush()

    def _flush(self) -> None:
        with self._lock:
            batch, self._outbox, self._flush_loop = self._outbox, [], None
        if batch:
            try:
                self._send(batch, deadline=time.monotonic() + self._config.commit_timeout_s)
            except AuditUnavailable as exc:
                self._gone(str(exc))

    def _send(self, messages: list[tuple[Any, ...]], *, deadline: float) -> None:
        data = _frame(messages)
        with self._send_lock:
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(self._to_child, view):]
                except BlockingIOError:  # the child is busy, or blocked on answers only this thread may read
                    readable, writable, _ = select.select([self._from_child], [self._to_child], [],
                                                          max(0.0, deadline - time.monotonic()))
                    if readable:
                        self._take()
                    if self._ended.is_set() or not (readable or writable):
                        self._child.kill()  # stuck: half a message cannot be taken back
                        raise AuditUnavailable("the audit writer process stopped reading its pipe") from None
                except OSError as exc:
                    raise AuditUnavailable(f"the audit writer process cannot be reached: {exc}") from None

    # -- answers from the child ----------------------------------------------------------------------

    def _read_on(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read answers on ``loop`` (the first that awaits a record, or the next once that one is closed). A reader
        thread handing them over with ``call_soon_threadsafe`` cost the proxy's process 0.36 ms more CPU a request
        at concurrency 1 (measured with the bench's chat request)."""
        with self._read_lock:
            if self._reading is None or self._reading.is_closed():
                if not self._ended.is_set():
                    loop.add_reader(self._from_child, self._take)
                    self._reading = loop

    def _take(self) -> bool:
        """Read and settle what the child has sent, on whichever thread asks; False once its pipe has closed."""
        with self._read_lock:
            if self._ended.is_set():  # given up on (a send failed): stop the loop calling at the pipe's EOF
                self._stop_reading()
                return False
            try:
                chunk = os.read(self._from_child, _PIPE_BYTES)
            except BlockingIOError:
                return True
            except OSError as exc:
                chunk, reason = b"", f"reading its answers failed: {exc}"
            else:
                reason = "its pipe closed"
            if chunk:
                self._frames.feed(chunk)
                while (messages := self._frames.next()) is not None:
                    self._answered(messages)
                return True
            self._stop_reading()
        self._gone(f"{reason}; exit status {self._child.poll()}")
        return False

    def _stop_reading(self) -> None:
        loop, self._reading = self._reading, None
        if loop is None or loop.is_closed():
            return
        if loop is _running_loop():
            loop.remove_reader(self._from_child)
            return
        try:
            loop.call_soon_threadsafe(loop.remove_reader, self._from_child)
        except RuntimeError:
            pass  # closed meanwhile: its selector went with it

    def _wait(self, done: Callable[[], bool], deadline: float) -> None:
        """Block until ``done()``, reading the answers here too (the loop that reads them may be this thread's); in
        short slices, since a loop on another thread may take the answer this one waits for."""
        while not done() and not self._ended.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if select.select([self._from_child], [], [], min(remaining, 0.01))[0]:
                self._take()

    def _answered(self, messages: list[tuple[Any, ...]]) -> None:
        outcomes = []
        with self._lock:
            for message in messages:
                if message[0] == "ack":
                    item = self._waiting.pop(message[1], None)
                    if item is not None:
                        outcome = message[2]
                        outcomes.append((item, Committed(*outcome) if type(outcome) is tuple else outcome))
                elif message[0] == "log":
                    _log(message)
                elif message[0] == "closed":
                    self._close_error = message[1]
                elif message[0] == "ready":
                    self._instance_id = message[1]
                elif message[0] == "failed":
                    self._start_error = message[1]
        settle_all(outcomes)

    def _gone(self, reason: str) -> None:
        with self._lock:
            if self._lost is not None:
                return
            self._lost = reason
            waiting = list(self._waiting.values())
            self._waiting.clear()
        self._ended.set()
        if not self._closed:
            log.critical("the audit writer process is gone (%s): every request is refused (503) until the gateway "
                         "is restarted", reason)
        settle_all((item, AuditUnavailable(f"the audit writer process is gone: {reason}")) for item in waiting)

    # -- the rest of the writer's API ---------------------------------------------------------------

    @property
    def stats(self) -> WriterStats:
        """The child's counters; AuditUnavailable if it does not answer within the commit timeout."""
        item = Pending("stats", None)
        self._post(item, ("stats",))
        self._wait(item.future.done, time.monotonic() + self._config.commit_timeout_s)
        try:
            return item.future.result(0)  # type: ignore[return-value]
        except concurrent.futures.TimeoutError:
            raise AuditUnavailable("the audit writer process did not report its counters") from None

    @property
    def instance_id(self) -> str:
        return self._instance_id

    @property
    def database(self) -> AuditDatabase:
        """This process's own connection to the audit database, for reads and the stores beside the log."""
        assert self._db is not None
        return self._db

    def close(self) -> None:
        """Flush, let the child write its final checkpoint and exit. AuditUnavailable as ``AuditWriter.close``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        self._flush()
        try:  # an orderly close says so first; EOF alone means the gateway died (see ``_serve``)
            self._send([(0, "closing")], deadline=time.monotonic() + self._config.commit_timeout_s)
        except AuditUnavailable as exc:
            log.error("cannot tell the audit writer process that the gateway is closing: %s", exc)
        os.close(self._to_child)  # EOF: the child commits what it has and exits
        self._wait(self._ended.is_set, time.monotonic() + _CLOSE_TIMEOUT_S)
        if not self._ended.is_set():
            log.error("the audit writer process did not finish within %gs; killed", _CLOSE_TIMEOUT_S)
            self._child.kill()
            self._wait(self._ended.is_set, time.monotonic() + _CLOSE_TIMEOUT_S)
        self._child.wait()
        if self._child.returncode:
            log.error("the audit writer process exited with status %d at close; the start check of the next "
                      "gateway start reads what it left", self._child.returncode)
        os.close(self._from_child)
        if self._db is not None:
            self._db.close()
        if self._close_error is not None:
            raise self._close_error

    async def aclose(self) -> None:
        with self._read_lock:
            if self._reading is asyncio.get_running_loop():
                self._stop_reading()  # the close reads the rest itself
        await asyncio.to_thread(self.close)


AuditLog = AuditWriter | AuditProcess
"""Either writer, as the gateway's parts take it: in a child (``gateway run``) or in this process (tools, tests)."""


class _Frames:
    """Length-prefixed pickles of message lists, as they arrive in chunks."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk

    def next(self) -> list[tuple[Any, ...]] | None:
        if len(self._buffer) < _HEADER.size:
            return None
        end = _HEADER.size + _HEADER.unpack_from(self._buffer)[0]
        if len(self._buffer) < end:
            return None
        messages = pickle.loads(memoryview(self._buffer)[_HEADER.size:end])
        del self._buffer[:end]
        return messages


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _frame(messages: list[tuple[Any, ...]]) -> bytes:
    data = pickle.dumps(messages, protocol=5)
    return _HEADER.pack(len(data)) + data


def _widen(fd: int) -> None:
    """A pipe holds 64 KiB by default: room for a few bodies; ask Linux for a megabyte where it allows."""
    try:
        fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_BYTES)
    except OSError:
        pass


def _log(message: tuple[Any, ...]) -> None:
    """A record the child logged, handled by this process's logging as if it had been logged here."""
    _, name, level, text = message
    logger = logging.getLogger(name)
    if logger.isEnabledFor(level):
        logger.handle(logger.makeRecord(name, level, "(audit writer process)", 0, text, None, None))


# -- the child ------------------------------------------------------------------------------------


class _Answers:
    """What the child sends back: the acknowledgements of a commit in one write (``flush``), log records at once."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self._acks: list[tuple[Any, ...]] = []
        self._broken = False

    def ack(self, ident: int, outcome: Any) -> None:
        """From any thread; sent at the next ``flush``."""
        with self._lock:
            self._acks.append(("ack", ident, outcome))

    def flush(self) -> None:
        with self._lock:
            batch, self._acks = self._acks, []
        if batch:
            self.send(batch)

    def send(self, messages: list[tuple[Any, ...]]) -> None:
        data = _frame(messages)
        with self._lock:
            if self._broken:
                return
            try:
                _write_all(self._fd, data)
            except OSError:
                self._broken = True  # the parent is gone: the records are still committed


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _PipeInbox:
    """The writer thread's queue in the child: the records the gateway sent are read off the pipe by the writer
    thread itself, when it asks for its next batch, and the acknowledgements of its last commit go out first, in
    one write. No other thread hands records over: each hand-over was a wake-up and a GIL switch on the critical
    path of every request. ``put`` (the writer's own start records, its stop, ``gateway.lost``) wakes it."""

    def __init__(self, requests: int, answers: _Answers) -> None:
        self._requests, self._answers = requests, answers
        self._local: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._frames = _Frames()
        self._wake_r, self._wake_w = os.pipe()
        for fd in (requests, self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        self._writer: AuditWriter | None = None
        self._draining = False
        self.orderly = False
        """The gateway said it was closing before its pipe's EOF."""
        self.ended = threading.Event()
        """The pipe reached EOF (or was drained after the parent's death): nothing more will come."""

    def serve(self, writer: AuditWriter) -> None:
        """Start reading the pipe, for ``writer``'s records (its start records are already queued)."""
        self._writer = writer
        self._wake()

    def drain_and_end(self) -> None:
        """Read what the pipe holds, then end as at EOF: for a pipe that a process other than the dead parent
        holds open."""
        self._draining = True
        self._wake()

    def put(self, item: Any) -> None:
        self._local.put(item)
        self._wake()

    def qsize(self) -> int:
        return self._local.qsize()

    def get_nowait(self) -> Any:
        return self.get(block=False)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        self._answers.flush()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                return self._local.get_nowait()
            except queue.Empty:
                pass
            if self._read():
                continue
            remaining = None if deadline is None else deadline - time.monotonic()
            if not block or (remaining is not None and remaining <= 0):
                raise queue.Empty
            self._answers.flush()  # a counters request answered in passing
            reading = self._writer is not None and not self.ended.is_set()
            select.select([self._wake_r, *([self._requests] if reading else [])], [], [], remaining)
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 4096)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
            os.write(self._wake_w, b"\0")

    def _read(self) -> bool:
        """Queue what the pipe holds; False if it held nothing (or has ended)."""
        if self._writer is None or self.ended.is_set():
            return False
        try:
            chunk = os.read(self._requests, _PIPE_BYTES)
        except BlockingIOError:
            if self._draining:
                self.ended.set()
            return False
        if not chunk:
            self.ended.set()
            return False
        self._frames.feed(chunk)
        while (messages := self._frames.next()) is not None:
            for message in messages:
                self._take(self._writer, message)
        return True

    def _take(self, writer: AuditWriter, message: tuple[Any, ...]) -> None:
        ident, op = message[0], message[1]
        if op == "closing":
            self.orderly = True
            return
        if op == "stats":
            self._answers.ack(ident, writer.stats)
            return
        try:
            if op == "request":
                _, _, event, findings, body, headers = message
                item = writer.request_item(event, findings, body=body, headers=headers)
            elif op == "response":
                _, _, event, findings, body, headers, latency = message
                item = writer.response_item(event, findings, body=body, headers=headers, latency_us=latency)
            elif op == "event":
                _, _, kind, data, request_id, agent, session = message
                item = writer.event_item(kind, data=data, request_id=request_id, agent=agent, session=session)
            else:
                item = writer.model_load_item(message[2])
        except Exception as exc:  # noqa: BLE001 - a record that cannot be queued is refused, not lost silently
            self._answers.ack(ident, _portable(exc))
            return
        item.future.add_done_callback(lambda future: self._answers.ack(ident, _outcome(future)))
        self._local.put(item)


class _Forward(logging.Handler):
    """The child's log records, sent to the parent's logging."""

    def __init__(self, answers: _Answers) -> None:
        super().__init__()
        self._answers = answers

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self._answers.send([("log", record.name, record.levelno, text)])


def _outcome(future: concurrent.futures.Future[Committed]) -> Any:
    exc = future.exception()
    if exc is None:
        done = future.result()
        return (done.id, done.seq, done.hash)
    return _portable(exc)


def _portable(exc: BaseException) -> BaseException:
    """The error itself if it survives pickling, else an AuditError that says what it was."""
    try:
        pickle.loads(pickle.dumps(exc, protocol=5))
    except Exception:  # noqa: BLE001 - any error that cannot travel is described instead
        return AuditError(f"{type(exc).__name__}: {exc}")
    return exc


def _serve(writer: AuditWriter, inbox: _PipeInbox, answers: _Answers, parent: int, config: WriterConfig) -> None:
    """Record what arrives until EOF (or the parent's death), then close the writer and say how that went.

    EOF without the parent's "closing" first means the gateway was killed or crashed: a ``gateway.lost`` event
    says so before the writer's own stop record, so that an investigator does not read a clean stop into it.
    """

    def terminated(_signal: int, _frame: object) -> None:
        if os.getppid() != parent:  # the parent died; a spawning thread's exit also sends it, and is ignored
            inbox.drain_and_end()

    signal.signal(signal.SIGTERM, terminated)
    inbox.serve(writer)
    while not inbox.ended.wait(1.0):
        pass
    if not inbox.orderly:
        lost = writer.event_item("gateway.lost", data={
            "parent_pid": parent, "reason": "the gateway process ended without closing its audit log (killed or "
            "crashed); requests it had not yet sent for recording were not forwarded either"})
        try:
            writer.enqueue(lost)
            lost.future.result(timeout=config.commit_timeout_s)
        except (AuditError, concurrent.futures.TimeoutError) as exc:
            log.error("cannot record that the gateway was lost: %s", exc or "timed out")
    error = None
    try:
        writer.close()
    except AuditError as exc:
        error = exc
    answers.flush()
    answers.send([("closed", _portable(error) if error else None)])


def _follow(parent: int) -> None:
    """SIGTERM when the parent dies; a Ctrl-C meant for the gateway is the gateway's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # died before prctl: the pipe's EOF still ends us once it is drained
        log.warning("the gateway exited before its audit writer process started")


def main(argv: list[str]) -> int:
    """The child: open the writer as the parent asks, serve it until EOF; 1 if it could not be opened."""
    requests, answers_fd, parent = (int(a) for a in argv)
    _follow(parent)
    frames = _Frames()
    while (messages := frames.next()) is None:
        chunk = os.read(requests, _PIPE_BYTES)
        if not chunk:
            return 1
        frames.feed(chunk)
    _, url, home, config, unsafe, level = messages[0]
    answers = _Answers(answers_fd)
    root = logging.getLogger()
    root.handlers[:] = [_Forward(answers)]
    root.setLevel(level)
    inbox = _PipeInbox(requests, answers)
    try:
        writer = AuditWriter.open(url, home=Path(home), config=config, unsafe_continue_after_divergence=unsafe,
                                  inbox=inbox)
    except Exception as exc:  # noqa: BLE001 - the parent raises it
        answers.send([("failed", _portable(exc))])
        return 1
    answers.send([("ready", writer.instance_id)])
    _serve(writer, inbox, answers, parent, config)
    sys.stderr.flush()
    os._exit(0)  # all committed and closed: the interpreter's teardown would only hold the gateway's exit (~0.3 s)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
