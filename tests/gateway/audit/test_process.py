"""The audit writer in a child process (``AuditProcess``): answers only once committed, refuses at once when the
child is gone, raises the writer's own start-up errors, and flushes what it was given when it closes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import openai
import pytest
from sqlalchemy import func, select

from gateway.audit.db import open_database
from gateway.audit.models import Record, RequestIndex
from gateway.audit.process import AuditProcess
from gateway.audit.writer import WriterConfig
from gateway.errors import AuditError, AuditTampered, AuditUnavailable
from modelgate.cli import main
from tests.gateway.audit.conftest import drop_tail, fill, request_event, response_event, small_checkpoints
from tests.gateway.stack import gateway_stack
from tests.servers import free_port

POLICY = """
version: 1
name: writer-process-test
gateway:
  profiles: [{name: default, models: ["stub-*"]}]
"""
HELLO = [{"role": "user", "content": "What is the capital of France?"}]


def writer_process() -> int:
    """The pid of this process's (only) audit writer child."""
    children = [int(pid) for task in Path("/proc/self/task").iterdir()
                for pid in (task / "children").read_text().split()]
    found = [pid for pid in children if b"gateway.audit.process" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(found) == 1, f"audit writer processes: {found}"
    return found[0]


def gone(pid: int, timeout_s: float = 10) -> None:
    """Wait until ``pid`` has exited (the front reaps it)."""
    deadline = time.monotonic() + timeout_s
    while Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline, f"process {pid} did not exit"
        time.sleep(0.02)


def test_a_request_is_answered_only_once_its_record_is_committed(audit_url: str, home: Path) -> None:
    writer = AuditProcess.open(audit_url, home=home)
    db = open_database(audit_url, migrate=False)

    async def run() -> None:
        done = await writer.record_request(request_event(1), body=b'{"messages": []}')
        with db.sessions() as session:  # another connection sees it: committed, not just queued
            row = session.get(Record, done.id)
            assert row is not None and (row.kind, row.request_id, row.seq, row.hash) == (
                "request", "req-1", done.seq, done.hash)
        answered = await asyncio.wrap_future(writer.record_response(response_event(1)))
        event = await writer.record_event("test.event", data={"n": 1}, request_id="req-1")
        assert done.seq < answered.seq < event.seq
        started = time.monotonic()  # counters asked from another thread while this loop reads the answers (/metrics)
        assert (await asyncio.to_thread(lambda: writer.stats)).records >= 4
        assert time.monotonic() - started < 1

    try:
        asyncio.run(run())
        stats = writer.stats
        assert stats.records >= 4 and stats.failed_commits == 0  # the start event, and the three above
        assert writer.instance_id and writer.database.database_id == db.database_id
    finally:
        writer.close()
        db.close()


def test_a_stopped_child_holds_the_request_back_until_the_commit_timeout(home: Path) -> None:
    writer = AuditProcess.open(None, home=home, config=WriterConfig(commit_timeout_s=0.5))
    child = writer_process()

    async def run() -> float:
        started = time.monotonic()
        with pytest.raises(AuditUnavailable, match="not committed within 0.5s"):
            await writer.record_request(request_event(1))
        return time.monotonic() - started

    os.kill(child, signal.SIGSTOP)
    try:
        waited = asyncio.run(run())
        with writer.database.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Record).where(Record.kind == "request")) == 0
    finally:
        os.kill(child, signal.SIGCONT)
    assert 0.45 < waited < 2
    writer.close()


def test_a_killed_child_refuses_the_waiting_and_every_later_record_at_once(
        home: Path, caplog: pytest.LogCaptureFixture) -> None:
    writer = AuditProcess.open(None, home=home, config=WriterConfig(commit_timeout_s=30))
    child = writer_process()

    async def run() -> float:
        os.kill(child, signal.SIGSTOP)
        waiting = asyncio.ensure_future(writer.record_request(request_event(1)))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        os.kill(child, signal.SIGKILL)
        with pytest.raises(AuditUnavailable, match="audit writer process is gone"):
            await waiting
        waited = time.monotonic() - started
        with pytest.raises(AuditUnavailable, match="gone"):
            await writer.record_request(request_event(2))
        with pytest.raises(AuditUnavailable, match="gone"):
            writer.record_response(response_event(1))
        return waited

    with caplog.at_level(logging.CRITICAL, logger="modelgate.audit"):
        assert asyncio.run(run()) < 5  # not the 30 s commit timeout
    assert any("audit writer process is gone" in r.getMessage()
               for r in caplog.records if r.levelno == logging.CRITICAL)
    writer.close()


def test_a_killed_writer_process_means_503_and_nothing_forwarded(tmp_path: Path) -> None:
    with gateway_stack(tmp_path, POLICY) as stack, stack.openai() as client:
        assert client.chat.completions.create(model="stub-1", messages=HELLO).choices[0].message.content
        child = writer_process()
        os.kill(child, signal.SIGKILL)
        gone(child)
        with pytest.raises(openai.APIStatusError, match="cannot record this request") as refused:
            client.chat.completions.create(model="stub-1", messages=HELLO)
        assert refused.value.status_code == 503
        assert len(stack.upstream.seen) == 1


def test_start_errors_are_the_writers_own(audit_url: str, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    writer = AuditProcess.open(audit_url, home=home, config=small_checkpoints())
    with pytest.raises(AuditError, match="another gateway process"):
        AuditProcess.open(audit_url, home=home)
    fill(writer, 10)
    writer.close()
    drop_tail(audit_url)
    with pytest.raises(AuditTampered, match="truncated") as tampered:
        AuditProcess.open(audit_url, home=home)
    assert tampered.value.problems and tampered.value.problems[0].what
    (home / "policy.yaml").write_text(POLICY)
    assert main(["gateway", "run", "--policy", str(home / "policy.yaml"), "--upstream", "http://127.0.0.1:9",
                 "--upstream-key-env", "", "--no-engine-check", "--audit-db", audit_url, "--state-dir", str(home),
                 "--listen", f"127.0.0.1:{free_port()}", "--proxy-listen", "off", "--admin-listen", "off"]) == 1
    assert "verification failed" in capsys.readouterr().err  # as before the writer had a process of its own
    with pytest.raises(AuditUnavailable, match="cannot open the audit database"):
        AuditProcess.open("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2", home=home)


def test_close_flushes_the_responses_nobody_waited_for(audit_url: str, home: Path) -> None:
    writer = AuditProcess.open(audit_url, home=home)

    async def run() -> None:
        for n in range(50):
            await writer.record_request(request_event(n))
        for n in range(50):
            writer.record_response(response_event(n), body=b'{"ok": true}')  # not awaited: still in the pipe at close

    asyncio.run(run())
    writer.close()
    with pytest.raises(AuditUnavailable, match="closed"):
        writer.record_response(response_event(99))
    db = open_database(audit_url, migrate=False)
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Record).where(Record.kind == "response")) == 50
        assert session.scalar(select(func.count()).select_from(RequestIndex).where(
            RequestIndex.status.is_not(None))) == 50
        events = [json.loads(data)["event"] for data in session.scalars(
            select(Record.data).where(Record.kind == "event").order_by(Record.seq))]
    db.close()
    assert events == ["gateway.start", "gateway.stop"]  # a clean close is not reported as a lost gateway


def test_the_child_outlives_the_thread_that_started_it(home: Path) -> None:
    """PR_SET_PDEATHSIG fires when the spawning *thread* ends (the gateway opens the writer in a worker thread)."""
    opened: list[AuditProcess] = []
    starter = threading.Thread(target=lambda: opened.append(AuditProcess.open(None, home=home)))
    starter.start()
    starter.join()
    time.sleep(0.3)  # the signal, had it not been ignored, would have ended the child by now
    (writer,) = opened
    try:
        assert asyncio.run(writer.record_request(request_event(1))).seq == 2
    finally:
        writer.close()


def test_a_child_that_stops_reading_is_given_up_on_and_the_loop_stays_idle(home: Path) -> None:
    writer = AuditProcess.open(None, home=home, config=WriterConfig(commit_timeout_s=0.5))
    child = writer_process()

    async def run() -> float:
        await writer.record_request(request_event(1))  # this loop now reads the answers
        os.kill(child, signal.SIGSTOP)
        with pytest.raises(AuditUnavailable, match="stopped reading its pipe"):
            await writer.record_request(request_event(2), body=b"x" * (8 << 20))  # more than the pipe holds
        gone(child)
        cpu = time.process_time()
        await asyncio.sleep(0.5)  # the dead child's pipe is at EOF: a reader left on it would spin
        return time.process_time() - cpu

    try:
        assert asyncio.run(run()) < 0.1
    finally:
        writer.close()



ORPHAN = """
import asyncio, os, sys, time
from pathlib import Path
from gateway.audit.process import AuditProcess
from tests.gateway.audit.conftest import request_event
writer = AuditProcess.open(None, home=Path(sys.argv[1]))
asyncio.run(writer.record_request(request_event(1)))
holder = os.fork()
if holder == 0:  # holds the pipe to the writer open, so that no EOF reaches it; not the test's output, though
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.dup2(1, 2)
    time.sleep(60)
    os._exit(0)
print(writer._child.pid, holder, flush=True)
os._exit(0)  # the gateway dies without closing its log
"""


def test_a_writer_whose_parent_died_ends_even_while_another_process_holds_its_pipe(home: Path) -> None:
    done = subprocess.run([sys.executable, "-c", ORPHAN, str(home)], capture_output=True, text=True, timeout=60,
                          env=os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[3])})
    assert done.returncode == 0, done.stderr
    child, holder = (int(pid) for pid in done.stdout.split())
    try:
        gone(child)  # PR_SET_PDEATHSIG's SIGTERM: it read what the pipe held and closed the writer
    finally:
        os.kill(holder, signal.SIGKILL)
    db = open_database(None, home=home, migrate=False)
    with db.sessions() as session:
        events = [json.loads(data)["event"] for data in session.scalars(
            select(Record.data).where(Record.kind == "event").order_by(Record.seq))]
        requests = session.scalar(select(func.count()).select_from(Record).where(Record.kind == "request"))
    db.close()
    assert events == ["gateway.start", "gateway.lost", "gateway.stop"] and requests == 1
