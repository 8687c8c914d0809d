"""Reviewers' decisions on quarantined MCP tools and on held calls: none takes effect before it is in the log.

An approval re-pins the definition the reviewer saw (``seen_digest``); if the server changed the tool
again meanwhile, the approval is refused rather than applied to a definition nobody reviewed. The
audit event (``approval.granted`` or ``approval.rejected``) is committed first, so a decision that is
not in the log never happened: if the log cannot be written, the tool stays as it was.

A held call is decided in the database (the first decision wins, ``gateway.audit.holds``); the gateway
whose flow waits records the outcome (``hold.approved``, ``hold.rejected``) and only then forwards or
refuses. When that gateway is this process, ``decide_call`` wakes the flow and waits for the record.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from gateway.audit.holds import NOTE_CAP, Decision, HeldCall, HeldCallStore
from gateway.audit.pins import DatabasePinStore, PinReview
from gateway.audit.process import AuditLog
from gateway.detect.mcp_pinning import ToolPin, approve
from gateway.errors import AuditUnavailable, DetectionError, GatewayError
from gateway.holds import Holds

__all__ = ["RECORD_WAIT_S", "Reviewer", "approve_tool", "decide_call", "reject_tool"]

RECORD_WAIT_S = 10.0
"""How long a decision waits for the holding gateway (this process) to record it: a commit, normally."""


@dataclass(frozen=True, slots=True)
class Reviewer:
    """Who decided, as the audit event records it."""

    via: str
    """ui, api or cli."""
    who: str
    """The admin session (a prefix of its id) and client address, or the operating-system user."""
    note: str = ""


async def approve_tool(store: DatabasePinStore, writer: AuditLog, server: str, tool: str, *,
                       seen_digest: str | None, reviewer: Reviewer) -> ToolPin:
    """Re-pin a quarantined tool to the definition the reviewer saw (``None``: whatever is observed now)."""
    review = await asyncio.to_thread(_pending, store, server, tool, seen_digest)
    await writer.record_event("approval.granted", data=_details(review, reviewer))
    return await asyncio.to_thread(approve, store, server, tool)


async def reject_tool(store: DatabasePinStore, writer: AuditLog, server: str, tool: str, *,
                      seen_digest: str | None, reviewer: Reviewer) -> PinReview:
    """Keep a quarantined tool refused and take it out of the queue."""
    review = await asyncio.to_thread(_pending, store, server, tool, seen_digest)
    await writer.record_event("approval.rejected", data=_details(review, reviewer))
    return await asyncio.to_thread(store.reject, server, tool, review.pin.observed_digest or "")


async def decide_call(store: HeldCallStore, holds: Holds | None, hold_id: int, decision: Decision, *,
                      reviewer: Reviewer) -> tuple[HeldCall, bool]:
    """Decide a held call; True once this gateway recorded and applied it, False when another process holds it
    (it does so at its next look). AuditUnavailable when the outcome could not be recorded: the call is refused."""
    decided = await asyncio.to_thread(store.decide, hold_id, decision, by=f"{reviewer.via} {reviewer.who}",
                                      note=reviewer.note)  # the store keeps NOTE_CAP of it
    recorded = holds.wake(hold_id) if holds is not None else None
    if recorded is None:
        return decided, False
    try:
        await asyncio.wait_for(asyncio.wrap_future(recorded), RECORD_WAIT_S)
    except TimeoutError:
        raise AuditUnavailable(f"held call {hold_id} was {decision}, but its record was not committed within "
                               f"{RECORD_WAIT_S:g}s") from None
    except GatewayError as exc:
        raise AuditUnavailable(f"held call {hold_id} was {decision}, but it could not be recorded, so the call is "
                               f"refused: {exc.reason}") from exc
    return decided, True


def _pending(store: DatabasePinStore, server: str, tool: str, seen_digest: str | None) -> PinReview:
    review = store.review(server, tool)
    pin = review.pin
    if pin.status != "quarantined" or pin.observed_digest is None:
        raise DetectionError(f"{tool!r} of {server} is not quarantined: there is nothing to decide")
    if seen_digest is not None and seen_digest != pin.observed_digest:
        raise DetectionError(f"{tool!r} of {server} changed again since it was reviewed (now "
                             f"{pin.observed_digest[:16]}…, reviewed {seen_digest[:16]}…): review it again")
    return review


def _details(review: PinReview, reviewer: Reviewer) -> dict[str, object]:
    pin = review.pin
    return {"server": pin.server, "tool": pin.tool, "pinned_digest": pin.digest,
            "observed_digest": pin.observed_digest, "quarantine_reason": pin.reason,
            "quarantined_at": review.since.isoformat(), "was_rejected": review.rejected,
            "via": reviewer.via, "by": reviewer.who, "note": reviewer.note[:NOTE_CAP]}
