"""Reviewers' decisions on quarantined MCP tools: each one written to the audit log before it takes effect.

An approval re-pins the definition the reviewer saw (``seen_digest``); if the server changed the tool
again meanwhile, the approval is refused rather than applied to a definition nobody reviewed. The
audit event (``approval.granted`` or ``approval.rejected``) is committed first, so a decision that is
not in the log never happened: if the log cannot be written, the tool stays as it was.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from gateway.audit.pins import DatabasePinStore, PinReview
from gateway.audit.writer import AuditWriter
from gateway.detect.mcp_pinning import ToolPin, approve
from gateway.errors import DetectionError

__all__ = ["Reviewer", "approve_tool", "reject_tool"]

_MAX_NOTE = 500


@dataclass(frozen=True, slots=True)
class Reviewer:
    """Who decided, as the audit event records it."""

    via: str
    """ui, api or cli."""
    who: str
    """The admin session (a prefix of its id) and client address, or the operating-system user."""
    note: str = ""


async def approve_tool(store: DatabasePinStore, writer: AuditWriter, server: str, tool: str, *,
                       seen_digest: str | None, reviewer: Reviewer) -> ToolPin:
    """Re-pin a quarantined tool to the definition the reviewer saw (``None``: whatever is observed now)."""
    review = await asyncio.to_thread(_pending, store, server, tool, seen_digest)
    await writer.record_event("approval.granted", data=_details(review, reviewer))
    return await asyncio.to_thread(approve, store, server, tool)


async def reject_tool(store: DatabasePinStore, writer: AuditWriter, server: str, tool: str, *,
                      seen_digest: str | None, reviewer: Reviewer) -> PinReview:
    """Keep a quarantined tool refused and take it out of the queue."""
    review = await asyncio.to_thread(_pending, store, server, tool, seen_digest)
    await writer.record_event("approval.rejected", data=_details(review, reviewer))
    return await asyncio.to_thread(store.reject, server, tool, review.pin.observed_digest or "")


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
            "via": reviewer.via, "by": reviewer.who, "note": reviewer.note[:_MAX_NOTE]}
