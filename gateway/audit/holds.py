"""Held calls in the audit database: the queue reviewers decide from, and how a decision reaches the gateway.

A gateway that holds a call (``gateway.holds``) adds a row here and waits; a reviewer anywhere (the admin
UI, ``modelgate calls``, another gateway's admin on a shared PostgreSQL) decides it with one conditional
update, so exactly one decision wins: the first approve, reject or expiry of a pending call, and none
after its ``expires_at``. The holding gateway reads the outcome, records it in the chain and only then
acts. What comes from the wire (arguments, reasons) is redacted before it is stored, as a record is.

    >>> store = HeldCallStore(open_database())                          # doctest: +SKIP
    >>> [(c.id, c.calls[0]["name"]) for c in store.pending()]           # doctest: +SKIP
    >>> store.decide(3, "approved", by="cli alice@laptop", note="ok")   # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.audit.db import AuditDatabase, guarded_session
from gateway.audit.index import clip
from gateway.audit.models import HeldCallRow
from gateway.audit.redact import redact_text
from gateway.errors import CallNotHeld, DetectionError
from gateway.events import RequestEvent, ToolCall
from gateway.findings import Finding

__all__ = ["NOTE_CAP", "Decision", "HeldCall", "HeldCallStore", "Stage", "Status"]

Stage = Literal["request", "response"]
Status = Literal["pending", "approved", "rejected", "expired"]
Decision = Literal["approved", "rejected"]

_ARGUMENTS = 4000
_REASON = 500
NOTE_CAP = 500
"""Characters of a reviewer's note kept, here and in the audit events of their decisions."""
_QUEUE = 200


@dataclass(frozen=True, slots=True)
class HeldCall:
    """One held call as the queue shows it and as its outcome event records it."""

    id: int
    request_id: str
    instance_id: str
    stage: Stage
    agent: str
    session: str
    protocol: str
    host: str
    calls: tuple[dict[str, Any], ...]
    """``{"name", "arguments", "server"}`` of each held call (arguments redacted, excerpted)."""
    reasons: tuple[dict[str, Any], ...]
    """``{"rule", "severity", "reason"}`` of each finding that held it."""
    status: Status
    held_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    note: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "request_id": self.request_id, "instance_id": self.instance_id, "stage": self.stage,
                "agent": self.agent, "session": self.session, "protocol": self.protocol, "host": self.host,
                "calls": list(self.calls), "reasons": list(self.reasons), "status": self.status,
                "held_at": self.held_at.isoformat(), "expires_at": self.expires_at.isoformat(),
                "decided_at": self.decided_at.isoformat() if self.decided_at else None,
                "decided_by": self.decided_by, "note": self.note}


class HeldCallStore:
    """Held calls on an open audit database; every method is one short transaction."""

    def __init__(self, db: AuditDatabase, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._db = db
        self._clock = clock

    def hold(self, event: RequestEvent, stage: Stage, calls: Sequence[ToolCall], findings: Sequence[Finding], *,
             instance_id: str, timeout_s: float) -> HeldCall:
        """Queue a call held by ``findings`` (those whose action is ``hold``); it expires after ``timeout_s``."""
        now = self._clock()
        reasons: dict[tuple[str, str], dict[str, str]] = {}
        for f in findings:  # the same rule can report one call twice (policy, then detector): shown once
            if f.action == "hold":
                reasons.setdefault((f.rule, f.reason), {"rule": f.rule, "severity": f.severity,
                                                        "reason": _redacted(f.reason, _REASON)})
        row = HeldCallRow(
            request_id=clip(event.request_id, 128), instance_id=instance_id, stage=stage, agent=clip(event.agent),
            session=clip(event.session), protocol=event.protocol, host=clip(event.host),
            calls=json.dumps([_call(c) for c in calls]), reasons=json.dumps(list(reasons.values())), status="pending",
            held_at=now, expires_at=now + timedelta(seconds=timeout_s), note="")
        with self._session() as session, session.begin():
            session.add(row)
            session.flush()
            return _held(row)

    def get(self, hold_id: int) -> HeldCall:
        """CallNotHeld if there is no such held call."""
        with self._session() as session:
            row = session.get(HeldCallRow, hold_id)
            if row is None:
                raise CallNotHeld(f"no held call {hold_id}")
            return _held(row)

    def pending(self, limit: int = _QUEUE) -> list[HeldCall]:
        """The calls still waiting for a decision, the longest waiting first."""
        with self._session() as session:
            rows = session.scalars(select(HeldCallRow).where(HeldCallRow.status == "pending",
                                                             HeldCallRow.expires_at > self._clock())
                                   .order_by(HeldCallRow.held_at, HeldCallRow.id).limit(limit))
            return [_held(row) for row in rows]

    def decide(self, hold_id: int, decision: Decision, *, by: str, note: str = "") -> HeldCall:
        """Approve or reject a pending call; DetectionError if it was already decided or has expired."""
        if decision not in ("approved", "rejected"):
            raise DetectionError(f"a held call is approved or rejected, not {decision!r}")
        now = self._clock()
        changed = self._change(
            hold_id, (HeldCallRow.status == "pending", HeldCallRow.expires_at > now),
            status=decision, decided_at=now, decided_by=by[:256], note=note[:NOTE_CAP])
        if changed is None:
            current = self.get(hold_id)
            if current.status == "pending":
                raise DetectionError(f"held call {hold_id} expired at {current.expires_at:%H:%M:%S}: it is refused")
            raise DetectionError(f"held call {hold_id} is no longer waiting: {current.status}"
                                 f"{f' by {current.decided_by}' if current.decided_by else ''}")
        return changed

    def expire(self, hold_id: int, *, by: str, note: str) -> HeldCall | None:
        """Mark a pending call expired (refused); None if a decision got there first (read it with ``get``)."""
        return self._change(hold_id, (HeldCallRow.status == "pending",), status="expired", decided_at=self._clock(),
                            decided_by=by, note=note[:NOTE_CAP])

    def expire_instance(self, instance_id: str, *, by: str, note: str) -> list[HeldCall]:
        """Expire every call a gateway instance still holds (it restarted: their flows are gone)."""
        with self._session() as session, session.begin():
            rows = list(session.scalars(select(HeldCallRow).where(HeldCallRow.instance_id == instance_id,
                                                                  HeldCallRow.status == "pending")
                                        .with_for_update()))
            now = self._clock()
            for row in rows:
                row.status, row.decided_at, row.decided_by, row.note = "expired", now, by, note[:NOTE_CAP]
            return [_held(row) for row in rows]

    def _change(self, hold_id: int, conditions: tuple[Any, ...], **values: Any) -> HeldCall | None:
        with self._session() as session, session.begin():
            result = session.execute(update(HeldCallRow).where(HeldCallRow.id == hold_id, *conditions)
                                     .values(**values).execution_options(synchronize_session=False))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                if session.get(HeldCallRow, hold_id) is None:
                    raise CallNotHeld(f"no held call {hold_id}")
                return None
            row = session.get(HeldCallRow, hold_id, populate_existing=True)
            return _held(row) if row is not None else None

    def _session(self) -> AbstractContextManager[Session]:
        return guarded_session(self._db, "the held calls")


def _redacted(text: str, limit: int) -> str:
    value = redact_text(text)[0]
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _call(call: ToolCall) -> dict[str, Any]:
    return {"name": clip(call.name), "arguments": _redacted(call.arguments_raw, _ARGUMENTS), "server": call.server}


def _held(row: HeldCallRow) -> HeldCall:
    status = row.status if row.status in ("pending", "approved", "rejected", "expired") else "expired"
    return HeldCall(row.id, row.request_id, row.instance_id, "response" if row.stage == "response" else "request",
                    row.agent, row.session, row.protocol, row.host, tuple(json.loads(row.calls)),
                    tuple(json.loads(row.reasons)), status, row.held_at, row.expires_at,  # type: ignore[arg-type]
                    row.decided_at, row.decided_by, row.note)
