"""The audit database goes away under a running gateway (PostgreSQL closed to connections, the gateway's
sessions terminated): requests are refused with 503 in their protocol's shape and nothing reaches the upstream;
once the database is back the gateway records again. With ``fail_closed: false`` requests pass, and the log
says each one went unrecorded."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import anthropic
import openai
import pytest
from sqlalchemy import text

from gateway.audit.state import AuditState
from gateway.audit.verify import verify_audit
from tests.gateway.postgres import database_url, pg_admin
from tests.gateway.stack import Stack, gateway_stack

POLICY = """
version: 1
name: audit-down-test
gateway:
  profiles: [{name: default, models: ["stub-*"]}]
  audit: {fail_closed: %s}
"""
HELLO = [{"role": "user", "content": "What is the capital of France?"}]


def set_connections(name: str, *, allowed: bool) -> None:
    """Open or close a database to new connections; closing also ends the sessions it has (the gateway's)."""
    admin = pg_admin()
    with admin.connect() as connection:
        connection.execute(text(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {str(allowed).lower()}"))
        if not allowed:
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
    admin.dispose()


def eventually(check: Callable[[], bool], what: str, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def chat(stack: Stack) -> str | None:
    with stack.openai() as client:
        return client.chat.completions.create(model="stub-1", messages=HELLO).choices[0].message.content


def test_requests_get_503_while_the_database_is_down_and_are_recorded_once_it_is_back(
        tmp_path: Path, pg_database: str) -> None:
    with gateway_stack(tmp_path, POLICY % "true", audit_url=database_url(pg_database)) as stack:
        assert chat(stack) == "Paris is the capital of France."
        set_connections(pg_database, allowed=False)
        try:
            with pytest.raises(openai.APIStatusError, match="cannot record this request") as refused:
                chat(stack)
            assert refused.value.status_code == 503
            assert refused.value.body["message"].startswith("modelgate cannot record")  # type: ignore[index]
            client = anthropic.Anthropic(base_url=stack.gateway.reverse_url, api_key=stack.key, max_retries=0)
            with pytest.raises(anthropic.APIStatusError, match="cannot record this request") as refused_too:
                client.messages.create(model="stub-claude", max_tokens=16, messages=HELLO)
            assert refused_too.value.status_code == 503
            assert refused_too.value.body["type"] == "error"  # type: ignore[index]
            assert len(stack.upstream.seen) == 1  # only the request from before
        finally:
            set_connections(pg_database, allowed=True)
        stack.db.engine.dispose()  # the test's own pooled connections were terminated too
        eventually(lambda: _passes(stack), "the gateway did not record again after the database came back")
        assert {r.request_id for r in stack.records("request")} == set(stack.upstream.ids())
        # The refusals' responses were kept while the database was down and written once it was back: the
        # outage's 503s are in the log, as responses whose requests could not be recorded.
        eventually(lambda: len(_refusals(stack)) >= 2, "the 503 answers were not recorded after the outage")
        assert not _refusals(stack) & {r.request_id for r in stack.records("request")}
        verify_audit(stack.db, state=AuditState.open(stack.home))


def _refusals(stack: Stack) -> set[str | None]:
    return {r.request_id for r in stack.records("response") if json.loads(r.data)["status"] == 503}


def _passes(stack: Stack) -> bool:
    try:
        return chat(stack) is not None
    except openai.APIStatusError as exc:
        assert exc.status_code == 503
        return False


def test_with_fail_closed_off_requests_pass_unrecorded_and_the_log_says_so(
        tmp_path: Path, pg_database: str, caplog: pytest.LogCaptureFixture) -> None:
    with gateway_stack(tmp_path, POLICY % "false", audit_url=database_url(pg_database)) as stack:
        assert chat(stack) == "Paris is the capital of France."
        set_connections(pg_database, allowed=False)
        try:
            with caplog.at_level(logging.CRITICAL, logger="modelgate.gateway"):
                assert chat(stack) == "Paris is the capital of France."
        finally:
            set_connections(pg_database, allowed=True)
        unrecorded = stack.upstream.ids()[1]
        (line,) = [r for r in caplog.records if r.name == "modelgate.gateway" and r.levelno == logging.CRITICAL]
        assert line.getMessage().startswith(f"UNRECORDED request {unrecorded} forwarded (audit fail_closed is off)")
        stack.db.engine.dispose()
        eventually(lambda: chat(stack) is not None, "the gateway stopped serving")
        recorded = {r.request_id for r in stack.records("request")}
        assert unrecorded not in recorded and recorded == set(stack.upstream.ids()) - {unrecorded}
