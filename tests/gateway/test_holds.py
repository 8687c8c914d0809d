"""Holding a call: the wait on the event loop (woken in-process, or by polling the database), the deadline, the
record of each outcome before it takes effect, and which answers must be read whole to be holdable."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.audit.holds import HeldCallStore
from gateway.audit.models import Record
from gateway.audit.writer import AuditWriter
from gateway.events import ToolCall, ToolSpec
from gateway.findings import Finding, decide
from gateway.holds import Holds, await_review, may_hold, refuse_held
from policies.detection import DetectionSection
from policies.gateway import GatewayProfile, HoldSection
from tests.gateway.audit.conftest import request_event

CALL = ToolCall(name="send_email", arguments_raw='{"to": "cfo@example.com"}', arguments={"to": "cfo@example.com"})
HELD = Finding(rule="policy.tool_held", action="hold", reason="tool 'send_email' waits for a reviewer")
ALERT = Finding(rule="detect.toolcall.tainted_value", action="alert", reason="a recipient from a document")


@pytest.fixture()
def writer(tmp_path: Path) -> Iterator[AuditWriter]:
    opened = AuditWriter.open(f"sqlite:///{tmp_path / 'audit.db'}", home=tmp_path / "home")
    yield opened
    opened.close()


def desk(writer: AuditWriter, *, timeout_s: float = 30, poll_s: float = 30) -> Holds:
    return Holds(HeldCallStore(writer.database), writer, HoldSection(timeout_s=timeout_s), poll_s=poll_s)


def events(writer: AuditWriter) -> list[dict]:
    with writer.database.sessions() as session:
        data = [json.loads(d) for d in session.scalars(select(Record.data).where(Record.kind == "event"))]
    return [d for d in data if d["event"].startswith("hold.")]


def decide_soon(holds: Holds, decision: str, *, wake: bool) -> threading.Thread:
    """A reviewer on another thread: sees the call queued, reads it for 0.3 s, decides, and (in-process) wakes it."""
    def run() -> None:
        while not (queued := holds.store.pending()):
            time.sleep(0.01)
        time.sleep(0.3)
        holds.store.decide(queued[0].id, decision, by="ui session ab12", note="checked")  # type: ignore[arg-type]
        if wake:
            recorded = holds.wake(queued[0].id)
            assert recorded is not None and recorded.result(timeout=10).status == decision

    thread = threading.Thread(target=run)
    thread.start()
    return thread


async def held_while_the_loop_runs(holds: Holds) -> tuple[list[Finding], int, float]:
    """Hold a call; the findings as decided, how often another task ran meanwhile, and how long it took."""
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    findings = await holds.hold(request_event(1), [HELD, ALERT], stage="response", calls=[CALL])
    ticker.cancel()
    return findings, ticks, time.monotonic() - started


def test_a_decision_in_this_process_wakes_the_call_at_once_and_is_recorded_first(writer: AuditWriter) -> None:
    holds = desk(writer, poll_s=30)  # polling could not explain a prompt release
    reviewer = decide_soon(holds, "approved", wake=True)
    findings, ticks, took = asyncio.run(held_while_the_loop_runs(holds))
    reviewer.join(10)
    assert 0.3 < took < 5 and ticks > 10  # the loop kept running while the call waited
    assert decide(findings) == "hold" and findings[1] == ALERT
    assert findings[0].reason.endswith("[held call 1: approved by ui session ab12: checked]")
    (event,) = events(writer)
    assert event["event"] == "hold.approved" and event["request_id"] == "req-1" and event["details"]["waited_s"] >= 0
    assert event["details"]["calls"][0]["name"] == "send_email" and event["session"] == "sess-1"


def test_a_decision_taken_elsewhere_is_read_from_the_database(writer: AuditWriter) -> None:
    holds = desk(writer, poll_s=0.05)
    reviewer = decide_soon(holds, "rejected", wake=False)
    findings, _, took = asyncio.run(held_while_the_loop_runs(holds))
    reviewer.join(10)
    assert decide(findings) == "block" and "rejected by ui session ab12: checked" in findings[0].reason
    assert took < 5 and [e["event"] for e in events(writer)] == ["hold.rejected"]


def test_nobody_deciding_refuses_the_call_at_the_deadline(writer: AuditWriter) -> None:
    holds = desk(writer, timeout_s=0.3, poll_s=30)
    findings, _, took = asyncio.run(held_while_the_loop_runs(holds))
    assert decide(findings) == "block" and "held call 1: expired: no decision within 0.3s" in findings[0].reason
    assert 0.25 < took < 5 and holds.store.get(1).status == "expired"
    (event,) = events(writer)
    assert event["event"] == "hold.expired" and event["details"]["decided_by"] == "gateway"


def test_a_call_that_cannot_be_queued_or_whose_outcome_cannot_be_recorded_is_refused(writer: AuditWriter) -> None:
    holds = desk(writer, poll_s=0.05)
    reviewer = decide_soon(holds, "approved", wake=False)

    async def approved_but_unrecorded() -> list[Finding]:
        hold = asyncio.create_task(holds.hold(request_event(1), [HELD], stage="request", calls=[CALL]))
        while not holds.store.pending() and not hold.done():
            await asyncio.sleep(0.01)
        writer.close()  # the audit log goes away while the call waits
        return await hold

    (refused,) = asyncio.run(approved_but_unrecorded())
    reviewer.join(10)
    assert refused.action == "block" and "held call 1 was approved, but that cannot be recorded" in refused.reason
    with writer.database.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE held_calls")
    (unqueued,) = asyncio.run(desk(writer).hold(request_event(2), [HELD], stage="request"))
    assert unqueued.action == "block" and "it cannot be queued for review" in unqueued.reason


def test_without_a_review_queue_a_hold_is_refused() -> None:
    (refused,) = asyncio.run(await_review(None, request_event(1), [HELD], stage="request"))
    assert refused.action == "block" and "no review queue" in refused.reason
    assert refuse_held([ALERT], "why") == [ALERT]


def test_a_restart_expires_what_the_instance_held_on_record(writer: AuditWriter) -> None:
    store = HeldCallStore(writer.database)
    store.hold(request_event(1), "request", [CALL], [HELD], instance_id=writer.instance_id, timeout_s=60)
    store.hold(request_event(2), "request", [CALL], [HELD], instance_id="another-gateway", timeout_s=60)
    (expired,) = asyncio.run(desk(writer).expire_stale())
    assert expired.request_id == "req-1" and [h.request_id for h in store.pending()] == ["req-2"]
    (event,) = events(writer)
    assert event["event"] == "hold.expired" and event["details"]["note"] == "the gateway restarted while it was held"


def profile(**fields: object) -> GatewayProfile:
    return GatewayProfile.model_validate({"name": "p", **fields})


@pytest.mark.parametrize(("tools", "fields", "detection", "expected"), [
    (("get_weather",), {"tools": [{"name": "get_weather"}, {"name": "send_email", "hold": True}]}, None, False),
    (("send_email",), {"tools": [{"name": "get_weather"}, {"name": "send_email", "hold": True}]}, None, True),
    (("send_email",), {"tools": [{"name": "send_*", "hold": True}], "actions": {"tool_held": "alert"}}, None, False),
    ((), {"tools": [{"name": "send_email", "hold": True}]}, None, False),
    (("x",), {"actions": {"tool_not_allowed": "hold"}}, None, True),
    (("x",), {"tools": [{"name": "x"}]}, {"rules": [{"rule": "detect.toolcall.*", "action": "hold"}]}, True),
    (("x",), {"tools": [{"name": "x"}]}, {"severity_actions": {"high": "hold"}}, True),
    (("x",), {"tools": [{"name": "x"}]}, {"enabled": False, "severity_actions": {"high": "hold"}}, False),
    (("x",), {"tools": [{"name": "x"}]}, {}, False),
])  # fmt: skip
def test_an_answer_is_read_whole_only_when_one_of_its_calls_can_be_held(
        tools: tuple[str, ...], fields: dict, detection: dict | None, expected: bool) -> None:
    request = request_event(1, tools=tuple(ToolSpec(name=t) for t in tools))
    section = DetectionSection.model_validate(detection) if detection is not None else None
    assert may_hold(request, profile(**fields), section) is expected
