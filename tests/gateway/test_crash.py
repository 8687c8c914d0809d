"""A gateway killed with SIGKILL under load: nothing reached the upstream without its committed record, and the
log it leaves verifies after a restart. The gateway is the real ``modelgate gateway run`` process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import select

from gateway.audit.agents import add_agent
from gateway.audit.db import open_database
from gateway.audit.models import Record
from tests.gateway.upstream import Upstream, upstream_app
from tests.servers import BackgroundServer, free_port

ROOT = Path(__file__).resolve().parents[2]
POLICY = """
version: 1
name: crash-test
gateway:
  profiles: [{name: default, models: ["stub-*"]}]
  audit: {checkpoint_every_records: 50}
"""
CHAT = {"model": "stub-1", "messages": [{"role": "user", "content": "What is the capital of France?"}]}
CLIENTS = 24
KILL_AFTER = 200
"""Requests the upstream has seen when the gateway is killed; the clients keep CLIENTS requests in flight."""


@contextmanager
def gateway_process(folder: Path, upstream: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``modelgate gateway run`` on ``port``, once it accepts connections; killed on the way out if still alive."""
    log = (folder / "gateway.log").open("ab")
    command = [sys.executable, "-m", "modelgate", "gateway", "run", "--policy", str(folder / "policy.yaml"),
               "--upstream", upstream, "--upstream-key-env", "", "--no-engine-check",
               "--state-dir", str(folder / "home"),
               "--listen", f"127.0.0.1:{port}", "--proxy-listen", "off"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log, env=os.environ | {"PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the gateway exited with {process.returncode}: "
                                     f"{(folder / 'gateway.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the gateway did not listen within 60s"
                time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        log.close()


def hammer(url: str, key: str, stop: threading.Event, answered: list[int]) -> None:
    """One client on a keep-alive connection, sending chat requests back to back until the gateway dies."""
    with httpx.Client(headers={"authorization": f"Bearer {key}"}, timeout=10) as client:
        while not stop.is_set():
            try:
                answered.append(client.post(url, json=CHAT).status_code)
            except httpx.TransportError:
                return


def test_a_killed_gateway_forwarded_nothing_unrecorded_and_its_log_verifies(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY)
    home, port = tmp_path / "home", free_port()
    db = open_database(None, home=home)
    key = add_agent(db, "tester").key
    record = Upstream()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    with BackgroundServer(upstream_app(record)) as upstream:
        with gateway_process(tmp_path, upstream.url, port) as gateway:
            stop, answered = threading.Event(), []
            clients = [threading.Thread(target=hammer, args=(url, key, stop, answered)) for _ in range(CLIENTS)]
            for client in clients:
                client.start()
            deadline = time.monotonic() + 30
            while len(record.ids()) < KILL_AFTER and time.monotonic() < deadline:
                time.sleep(0.005)
            gateway.send_signal(signal.SIGKILL)
            gateway.wait()
            stop.set()
            for client in clients:
                client.join(15)
        assert gateway.returncode == -signal.SIGKILL
        reached = set(record.ids())
        assert len(reached) >= KILL_AFTER and answered.count(200) >= KILL_AFTER - CLIENTS

        with db.sessions() as session:
            recorded = set(session.scalars(select(Record.request_id).where(Record.kind == "request")))
        missing = reached - recorded
        assert not missing, f"{len(missing)} of {len(reached)} forwarded requests have no record: {sorted(missing)[:5]}"

        with gateway_process(tmp_path, upstream.url, port) as gateway:  # the start check accepts the crashed log
            assert httpx.post(url, json=CHAT, headers={"authorization": f"Bearer {key}"}).status_code == 200
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(30) == 0
    db.close()
    verify = subprocess.run(
        [sys.executable, "-m", "modelgate", "audit", "verify", "--audit-db", f"sqlite:///{home / 'audit.db'}",
         "--state-dir", str(home), "--json"], cwd=ROOT, capture_output=True, text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)})
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = json.loads(verify.stdout)
    assert report["ok"] and report["requests"] == len(recorded) + 1
