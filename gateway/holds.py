"""Held calls: a tool call the policy says to ``hold`` waits for a reviewer, on the event loop without blocking it.

Human in the loop: when the decision over an agent's request (an MCP ``tools/call``, an outbound call)
or over a model's answer (the calls it proposes) is ``hold``, the gatekeeper asks ``Holds.hold``. The call
is queued in the audit database (``gateway.audit.holds``) and the flow waits, as a coroutine, up to the
policy's ``holds.timeout_s``:

- a decision in this gateway's admin UI wakes it at once (``wake``, called from the admin's thread);
- one taken anywhere else (``modelgate calls`` with no admin API, another gateway's admin) is read from
  the database every ``poll_s``;
- at the deadline it expires. Approved, the flow goes on as if alerted; rejected or expired, it is
  blocked with the protocol's error (fail closed).

The outcome is recorded (``hold.approved``, ``hold.rejected``, ``hold.expired``) before the flow acts on
it; an approval that cannot be recorded is not applied. Held calls survive nothing: at start the gateway
expires what its instance held before (``expire_stale``). A live event stream cannot wait in the middle
(mitmproxy calls stream hooks synchronously), so an answer that ``may_hold`` is read whole rather than
streamed through, and a hold that comes up in a live stream anyway is refused (``refuse_held``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from gateway.audit.holds import HeldCall, HeldCallStore, Stage
from gateway.audit.process import AuditLog
from gateway.enforce import tool_rule
from gateway.errors import AuditUnavailable, GatewayError
from gateway.events import RequestEvent, ToolCall
from gateway.findings import Action, Finding
from policies.detection import DetectionSection
from policies.gateway import GatewayProfile, HoldSection

__all__ = ["POLL_S", "Holds", "await_review", "may_hold", "refuse_held", "settle"]

log = logging.getLogger("modelgate.holds")

POLL_S = 1.0
"""How often a waiting call reads its row: decisions taken outside this process arrive within this."""
_GATEWAY = "gateway"


@dataclass
class _Waiter:
    loop: asyncio.AbstractEventLoop
    woken: asyncio.Event = field(default_factory=asyncio.Event)
    recorded: concurrent.futures.Future[HeldCall] = field(default_factory=concurrent.futures.Future)
    """Set once the outcome is in the audit log (or failed to be): what a reviewer in this process waits for."""


class Holds:
    """The calls one gateway holds, and how they learn of their decision."""

    def __init__(self, store: HeldCallStore, writer: AuditLog, settings: HoldSection, *,
                 poll_s: float = POLL_S) -> None:
        self.store, self._writer, self._settings, self._poll_s = store, writer, settings, poll_s
        self._waiting: dict[int, _Waiter] = {}

    async def hold(self, event: RequestEvent, findings: Sequence[Finding], *, stage: Stage,
                   calls: Sequence[ToolCall] = ()) -> list[Finding]:
        """Queue the call, wait for its outcome and record it; ``findings`` as decided: a hold that was approved
        stays ``hold`` (the flow goes on), one that was rejected or expired becomes ``block``."""
        calls = calls or ((event.tool_call,) if event.tool_call is not None else ())
        try:
            held = await asyncio.to_thread(self.store.hold, event, stage, calls, findings,
                                           instance_id=self._writer.instance_id, timeout_s=self._settings.timeout_s)
        except AuditUnavailable as exc:
            return refuse_held(findings, f"it cannot be queued for review ({exc.reason})")
        waiter = self._waiting[held.id] = _Waiter(asyncio.get_running_loop())
        log.info("held call %d (%s of %s) waits up to %gs for a reviewer", held.id, stage, event.agent,
                 self._settings.timeout_s)
        try:
            outcome = await self._outcome(held, waiter)
            try:
                waited = ((outcome.decided_at or datetime.now(UTC)) - held.held_at).total_seconds()
                await self._writer.record_event(f"hold.{outcome.status}", data=outcome.to_json() | {
                    "waited_s": round(waited, 3)}, request_id=event.request_id, agent=event.agent,
                    session=event.session)
            except AuditUnavailable as exc:
                waiter.recorded.set_exception(exc)
                return refuse_held(findings, f"held call {held.id} was {outcome.status}, but that cannot be "
                                             f"recorded, so it is not applied ({exc.reason})")
            waiter.recorded.set_result(outcome)
            return settle(findings, outcome)
        finally:
            self._waiting.pop(held.id, None)
            if not waiter.recorded.done():
                waiter.recorded.set_exception(GatewayError(f"held call {held.id} stopped waiting"))

    def wake(self, hold_id: int) -> concurrent.futures.Future[HeldCall] | None:
        """A decision on ``hold_id`` was just stored: wake its flow (thread-safe). The future resolves once the
        outcome is recorded; None when this gateway does not hold that call."""
        waiter = self._waiting.get(hold_id)
        if waiter is None:
            return None
        try:
            waiter.loop.call_soon_threadsafe(waiter.woken.set)
        except RuntimeError:  # the proxy's loop has closed: the gateway is stopping, and the flow with it
            return None
        return waiter.recorded

    async def expire_stale(self) -> list[HeldCall]:
        """Refuse, on record, every call this gateway instance held before it (re)started: their flows are gone."""
        expired = await asyncio.to_thread(self.store.expire_instance, self._writer.instance_id, by=_GATEWAY,
                                          note="the gateway restarted while it was held")
        for held in expired:
            await self._writer.record_event("hold.expired", data=held.to_json(), request_id=held.request_id,
                                            agent=held.agent, session=held.session)
        if expired:
            log.warning("expired %d call(s) held before the gateway restarted", len(expired))
        return expired

    async def _outcome(self, held: HeldCall, waiter: _Waiter) -> HeldCall:
        deadline = time.monotonic() + max(0.0, (held.expires_at - datetime.now(UTC)).total_seconds())
        while True:
            waiter.woken.clear()  # before the read: a wake while it runs is not lost
            try:
                current = await asyncio.to_thread(self.store.get, held.id)
            except AuditUnavailable as exc:  # keep waiting: the deadline still refuses it
                log.warning("held call %d cannot be read: %s", held.id, exc.reason)
                current = held
            if current.status != "pending":
                return current
            left = deadline - time.monotonic()
            if left <= 0:
                return await self._expire(held)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.woken.wait(), min(self._poll_s, left))

    async def _expire(self, held: HeldCall) -> HeldCall:
        note = f"no decision within {self._settings.timeout_s:g}s"
        try:
            expired = await asyncio.to_thread(self.store.expire, held.id, by=_GATEWAY, note=note)
            return expired or await asyncio.to_thread(self.store.get, held.id)  # a decision landed first
        except AuditUnavailable as exc:
            log.warning("held call %d cannot be expired in the database (%s); refused anyway", held.id, exc.reason)
            return replace(held, status="expired", decided_at=datetime.now(UTC), decided_by=_GATEWAY, note=note)


async def await_review(holds: Holds | None, event: RequestEvent, findings: Sequence[Finding], *, stage: Stage,
                       calls: Sequence[ToolCall] = ()) -> list[Finding]:
    """``Holds.hold``, or every hold refused where the gateway has no review queue."""
    if holds is None:
        return refuse_held(findings, "this gateway has no review queue")
    return await holds.hold(event, findings, stage=stage, calls=calls)


def settle(findings: Sequence[Finding], outcome: HeldCall) -> list[Finding]:
    """``findings`` after ``outcome``: each hold says who decided, and blocks unless it was approved."""
    who = f" by {outcome.decided_by}" if outcome.decided_by and outcome.decided_by != _GATEWAY else ""
    note = f": {outcome.note}" if outcome.note else ""
    if outcome.status == "approved":
        return _rewrite(findings, "hold", f"held call {outcome.id}: approved{who}{note}")
    return _rewrite(findings, "block", f"held call {outcome.id}: {outcome.status}{who}{note}")


def refuse_held(findings: Sequence[Finding], why: str) -> list[Finding]:
    """Every hold in ``findings`` blocked, saying why it could not wait for a reviewer (fail closed)."""
    return _rewrite(findings, "block", f"held, but {why}: refused")


def may_hold(request: RequestEvent, profile: GatewayProfile, detection: DetectionSection | None) -> bool:
    """Whether the answer to ``request`` can be held: it proposes calls of the tools offered, and a rule or a
    detector setting may hold such a call. Such an answer is read whole, as a live stream cannot wait."""
    if not request.tools:
        return False
    actions = profile.actions
    if "hold" in (actions.tool_not_allowed, actions.tool_arguments_invalid):
        return True
    if actions.tool_held == "hold" and any((rule := tool_rule(profile, t.name)) is not None and rule.hold
                                           for t in request.tools):
        return True
    if detection is None or not detection.enabled:
        return False
    return "hold" in detection.severity_actions.model_dump().values() or any(
        s.action == "hold" for s in detection.rules)


def _rewrite(findings: Sequence[Finding], action: Action, note: str) -> list[Finding]:
    return [f.model_copy(update={"action": action, "reason": f"{f.reason} [{note}]"[:1000]}) if f.action == "hold"
            else f for f in findings]

