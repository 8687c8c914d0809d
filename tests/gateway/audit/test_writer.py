"""The writer against real SQLite and PostgreSQL: what is recorded, group commit, checkpoints, restarts."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.audit.db import open_database
from gateway.audit.models import Body, Record, RequestIndex, RequestRule, RequestTool
from gateway.audit.state import AuditState, Head
from gateway.audit.verify import verify_audit
from gateway.audit.writer import AuditWriter, Committed, WriterConfig
from gateway.errors import AuditError, AuditTampered, AuditUnavailable
from gateway.events import ToolCall
from tests.gateway.audit.conftest import ALERT, BLOCK, drop_tail, fill, request_event, response_event, small_checkpoints


def records(url: str, kind: str | None = None) -> list[Record]:
    db = open_database(url)
    try:
        with db.sessions() as s:
            query = select(Record).order_by(Record.seq)
            return list(s.scalars(query.where(Record.kind == kind) if kind else query))
    finally:
        db.close()


def test_request_and_response_make_one_completed_index_row(audit_url: str, home: Path) -> None:
    writer = AuditWriter.open(audit_url, home=home)

    async def run() -> None:
        committed = await writer.record_request(
            request_event(1, tool_call=ToolCall(name="fs.read")), [ALERT], body=b'{"q": 1}',
            headers=[("Authorization", "Bearer sk-live-0123456789abcdefghij"), ("Accept", "json")])
        assert committed.seq == 2  # after the gateway.start event
        done = writer.record_response(response_event(1, tool_calls=(ToolCall(name="shell"),)), [BLOCK],
                                      body=b"answer")
        assert (await asyncio.wrap_future(done)).seq == 3
        await writer.record_model_load({"model": "smol", "decision": "loaded", "timings": {"signature": 0.0123}})
        await writer.record_event("approval.granted", request_id="req-1", session="sess-1", data={"by": "alice"})

    asyncio.run(run())
    writer.close()
    db = open_database(audit_url)
    with db.sessions() as s:
        row = s.scalars(select(RequestIndex)).one()
        assert (row.agent, row.session, row.host, row.model, row.status) == ("agent-a", "sess-1", "127.0.0.1",
                                                                             "smol", 200)
        assert (row.request_decision, row.response_decision, row.decision) == ("alert", "block", "block")
        assert row.tools == "fs.read shell" and row.rules == "detect.injection.role_marker policy.tool_not_allowed"
        assert (row.prompt_tokens, row.completion_tokens, row.request_size, row.response_size) == (10, 5, 8, 6)
        assert row.latency_us is not None and row.latency_us >= 0
        assert sorted(s.scalars(select(RequestTool.tool))) == ["fs.read", "shell"]
        assert len(s.scalars(select(RequestRule.rule)).all()) == 2
        kinds = [r.kind for r in s.scalars(select(Record).order_by(Record.seq))]
        assert kinds == ["event", "request", "response", "model_load", "event", "event", "checkpoint"]
        request = json.loads(s.scalars(select(Record.data).where(Record.kind == "request")).one())
        assert request["headers"] == [["Authorization", "Bearer [REDACTED]"], ["Accept", "json"]]
        assert request["tool_call"] == "fs.read" and request["findings"][0]["score"] == 0.8
        response = json.loads(s.scalars(select(Record.data).where(Record.kind == "response")).one())
        assert response["status"] == 200 and response["tool_calls"] == ["shell"]
        assert s.scalars(select(Record.session).where(Record.kind == "response")).one() == "sess-1"
    verify_audit(db, state=AuditState.open(home, create=False))
    db.close()


def test_concurrent_requests_share_commits(audit_url: str, home: Path) -> None:
    writer = AuditWriter.open(audit_url, home=home)
    before = writer.stats.commits

    async def run() -> None:
        await asyncio.gather(*(writer.record_request(request_event(n)) for n in range(64)))

    asyncio.run(run())
    stats = writer.stats
    writer.close()
    assert stats.records >= 64 + 1
    assert stats.commits - before < 64 / 4, stats  # 64 records in at most a handful of commits
    assert len(records(audit_url, "request")) == 64
    assert stats.commit_seconds.count == stats.commits and stats.commit_seconds.total > 0  # every commit timed
    assert stats.queue_depth == 0  # all taken by the writer once their requests returned


def test_every_commit_is_sealed_and_checkpoints_reach_the_witness(audit_url: str, home: Path) -> None:
    writer = AuditWriter.open(audit_url, home=home, config=small_checkpoints())
    fill(writer, 20)
    writer.close()
    rows = records(audit_url)
    assert rows[-1].kind == "checkpoint" and rows[-1].seal is not None
    checkpoints = [r for r in rows if r.kind == "checkpoint"]
    # A checkpoint closes the first commit that brings 10 records since the last, and the shutdown.
    reasons = [json.loads(r.data)["reason"] for r in checkpoints]
    assert reasons[-1] == "shutdown" and reasons.count("count") >= 2, reasons
    assert all(json.loads(r.data)["records"] >= 10 for r in checkpoints[:-1])
    witness = [json.loads(line) for line in (home / "audit" / "witness.jsonl").read_text().splitlines()]
    assert [(w["seq"], w["hash"]) for w in witness] == [(r.seq, r.hash) for r in checkpoints]
    head = json.loads((home / "audit" / "head").read_bytes())
    assert (head["seq"], head["hash"]) == (rows[-1].seq, rows[-1].hash)
    assert json.loads(checkpoints[0].data)["through_seq"] == checkpoints[0].seq - 1


def test_a_restart_continues_the_same_chain(audit_url: str, home: Path) -> None:
    writer = AuditWriter.open(audit_url, home=home)
    first = writer.instance_id
    fill(writer, 3)
    writer.close()
    writer = AuditWriter.open(audit_url, home=home)
    assert writer.instance_id == first
    fill(writer, 3, start=3)
    writer.close()
    rows = records(audit_url)
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))
    assert {r.instance_id for r in rows} == {first}


def test_identical_bodies_are_stored_once_and_large_ones_capped(audit_url: str, home: Path) -> None:
    writer = AuditWriter.open(audit_url, home=home, config=WriterConfig(body_cap=1024))
    big = b'{"text": "' + b"x" * 5000 + b'", "password": "hunter2"}'

    async def run() -> None:
        for n in range(3):
            await writer.record_request(request_event(n), body=b'{"same": true}')
        await writer.record_request(request_event(9), body=big)

    asyncio.run(run())
    writer.close()
    db = open_database(audit_url)
    with db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Body)) == 2
        capped = json.loads(s.scalars(select(Record.data).where(Record.request_id == "req-9")).one())["body"]
        stored = s.get(Body, capped["stored"])
        assert stored is not None and stored.content == big[:1024]
        assert capped["size"] == len(big) and capped["truncated"] and capped["stored_size"] == 1024
        assert capped["redactions"] == 1  # the password beyond the cap was redacted in the full body's hash
        import hashlib

        assert capped["sha256"] == hashlib.sha256(big.replace(b'"hunter2"', b'"[REDACTED]"')).hexdigest()
    db.close()


def test_responses_are_flushed_at_close(audit_url: str, home: Path) -> None:
    writer = AuditWriter.open(audit_url, home=home)

    async def run() -> None:
        await asyncio.gather(*(writer.record_request(request_event(n)) for n in range(20)))
        for n in range(20):
            writer.record_response(response_event(n))  # not awaited

    asyncio.run(run())
    writer.close()
    assert len(records(audit_url, "response")) == 20


def test_a_response_alone_is_committed_at_once_and_the_head_witness_waits_for_a_synced_commit(
        audit_url: str, home: Path) -> None:
    writer = AuditWriter.open(audit_url, home=home)
    state = AuditState.open(home)

    async def run() -> tuple[Head | None, Committed, Head | None, Committed, Head | None]:
        request = await writer.record_request(request_event(1))
        at_request = state.read_head()
        assert at_request == Head(request.seq, request.hash)
        response = await asyncio.wrap_future(writer.record_response(response_event(1)))  # nothing else queued
        at_response = state.read_head()
        second = await writer.record_request(request_event(2))
        return at_request, response, at_response, second, state.read_head()

    try:
        at_request, response, at_response, second, at_second = asyncio.run(run())
    finally:
        writer.close()
    assert response.seq == at_request.seq + 1  # committed by itself, not kept for a request to share
    assert at_response == at_request  # not synced: the witness must not claim it (a power loss may take it)
    assert second.seq == response.seq + 1 and at_second == Head(second.seq, second.hash)
    assert [(r.kind, r.seq) for r in records(audit_url) if r.kind in ("request", "response")] == [
        ("request", at_request.seq), ("response", response.seq), ("request", second.seq)]


def test_the_writer_refuses_after_close_and_a_second_writer_of_the_instance(audit_url: str, home: Path) -> None:
    writer = AuditWriter.open(audit_url, home=home)
    with pytest.raises(AuditError, match="another gateway process"):
        AuditWriter.open(audit_url, home=home)
    writer.close()
    with pytest.raises(AuditUnavailable, match="closed"):
        asyncio.run(writer.record_request(request_event(1)))


def test_a_state_folder_serves_one_database(tmp_path: Path, home: Path) -> None:
    AuditWriter.open(f"sqlite:///{tmp_path / 'a.db'}", home=home).close()
    with pytest.raises(AuditError, match="belongs to audit database"):
        AuditWriter.open(f"sqlite:///{tmp_path / 'b.db'}", home=home)


def test_start_refuses_a_database_behind_its_witness(audit_url: str, home: Path) -> None:
    writer = AuditWriter.open(audit_url, home=home, config=small_checkpoints())
    fill(writer, 10)
    writer.close()
    drop_tail(audit_url)
    with pytest.raises(AuditTampered, match="truncated"):
        AuditWriter.open(audit_url, home=home)
    writer = AuditWriter.open(audit_url, home=home, unsafe_continue_after_divergence=True)
    writer.close()
    divergence = [json.loads(r.data) for r in records(audit_url, "event") if "divergence" in r.data]
    assert divergence and divergence[0]["details"]["unsafe_continue"] is True


def test_oversized_and_odd_wire_values_are_recorded_not_refused(audit_url: str, home: Path) -> None:
    writer = AuditWriter.open(audit_url, home=home)
    odd = request_event(1, request_id="r" * 300, session="s" * 1000, host="h\x00" * 200, path="/" + "p" * 20000,
                        method="PROPFIND-EXTENDED-X", model="m\udcff" * 100, tool_call=ToolCall(name="t\x00" * 300))

    async def run() -> None:
        await writer.record_request(odd, [BLOCK], body=b"\xff\xfe\x00 not utf-8" * 1000,
                                    headers=[("X-\x00", "\udcff" * 10)])
        await asyncio.wrap_future(writer.record_response(response_event(1, request_id="r" * 300,
                                                                        finish_reason="\x00")))

    asyncio.run(run())
    writer.close()
    db = open_database(audit_url)
    with db.sessions() as s:
        row = s.scalars(select(RequestIndex)).one()
        assert len(row.session) == 256 and "\x00" not in row.host and row.status == 200
        assert json.loads(s.scalars(select(Record.data).where(Record.kind == "request")).one())["session"] == "s" * 1000
    verify_audit(db, state=AuditState.open(home, create=False))
    db.close()


def test_a_repeated_request_id_fails_alone(audit_url: str, home: Path) -> None:
    writer = AuditWriter.open(audit_url, home=home)

    async def run() -> list[object]:
        await writer.record_request(request_event(1))
        return await asyncio.gather(writer.record_request(request_event(1)), writer.record_request(request_event(2)),
                                    writer.record_request(request_event(2)), return_exceptions=True)

    outcomes = asyncio.run(run())
    writer.close()
    assert isinstance(outcomes[0], AuditUnavailable) and "recorded already" in outcomes[0].reason
    assert sum(isinstance(o, AuditUnavailable) for o in outcomes[1:]) == 1
    assert sorted(r.request_id for r in records(audit_url, "request")) == ["req-1", "req-2"]


def test_sqlite_checkpoints_keep_the_database_file_current_while_the_writer_runs(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "audit.db"
    writer = AuditWriter.open(f"sqlite:///{path}", home=home)
    before = path.stat().st_size
    fill(writer, 200)  # a few thousand pages of log: commits never copy them back themselves
    deadline = time.monotonic() + 10
    while path.stat().st_size <= before:  # only a checkpoint writes the database file in WAL mode
        assert time.monotonic() < deadline, "no checkpoint ran while the writer was open"
        time.sleep(0.05)
    writer.close()
    assert len(records(f"sqlite:///{path}", "request")) == 200


def test_a_record_that_cannot_be_built_fails_alone(audit_url: str, home: Path) -> None:
    writer = AuditWriter.open(audit_url, home=home)
    unbuildable = ALERT.model_copy(update={"score": float("nan")})  # no canonical JSON for NaN

    async def run() -> list[object]:
        return await asyncio.gather(writer.record_request(request_event(1)),
                                    writer.record_request(request_event(2), [unbuildable]),
                                    writer.record_request(request_event(3)), return_exceptions=True)

    outcomes = asyncio.run(run())
    writer.close()
    assert isinstance(outcomes[1], AuditUnavailable) and "cannot be recorded" in outcomes[1].reason
    assert not isinstance(outcomes[0], BaseException) and not isinstance(outcomes[2], BaseException)
    assert sorted(r.request_id for r in records(audit_url, "request")) == ["req-1", "req-3"]


_POISON = {
    "sqlite": ["CREATE TRIGGER poison BEFORE INSERT ON audit_requests WHEN NEW.request_id = 'req-13' "
               "BEGIN SELECT RAISE(ABORT, 'poisoned'); END"],
    "postgresql": ["CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN IF NEW.request_id = 'req-13' THEN "
                   "RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
                   "CREATE TRIGGER poison BEFORE INSERT ON audit_requests FOR EACH ROW EXECUTE FUNCTION poison()"],
}


def test_a_record_the_database_refuses_does_not_take_its_commit_down(audit_url: str, home: Path) -> None:
    writer = AuditWriter.open(audit_url, home=home)
    with writer.database.engine.begin() as connection:
        for statement in _POISON[connection.dialect.name]:
            connection.exec_driver_sql(statement)

    async def run() -> list[object]:
        return await asyncio.gather(*(writer.record_request(request_event(n)) for n in range(10, 20)),
                                    return_exceptions=True)

    outcomes = asyncio.run(run())
    writer.close()
    refused = [n for n, o in zip(range(10, 20), outcomes, strict=True) if isinstance(o, AuditUnavailable)]
    assert refused == [13] and "refused" in str(outcomes[3])
    assert len(records(audit_url, "request")) == 9
    db = open_database(audit_url)
    verify_audit(db, state=AuditState.open(home, create=False))
    db.close()
