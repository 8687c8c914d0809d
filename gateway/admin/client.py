"""Decisions from outside the gateway: through a running gateway's admin API, else straight to the database.

A running gateway holds its audit instance's writer lock, so a second process cannot write that chain;
a tool decision then goes through the gateway's own admin listener (Bearer admin token from the state
folder) and its writer records it. With no gateway listening, the CLI opens the writer itself. Either
way the decision is audited before it takes effect. A held call's decision is stored in the database
either way; the gateway whose flow waits records it and acts (at once when asked through its admin API,
within a second when it reads the database).
"""

from __future__ import annotations

import asyncio
import getpass
import socket
from pathlib import Path
from typing import Any, Literal

import httpx

from gateway.admin.approvals import Reviewer, approve_tool, reject_tool
from gateway.admin.auth import admin_token
from gateway.audit.db import AuditDatabase
from gateway.audit.holds import HeldCallStore
from gateway.audit.pins import DatabasePinStore
from gateway.audit.writer import AuditWriter
from gateway.errors import AccessDenied, AdminError, AuditUnavailable, DetectionError

__all__ = ["Action", "decide_call_here", "decide_call_through", "decide_here", "decide_through", "operator"]

Action = Literal["approve", "reject"]

_TIMEOUT_S = 15.0


def operator() -> str:
    """Who runs this command, for the audit event: user@host."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def decide_through(admin_url: str, home: Path, action: Action, server: str, tool: str, *, digest: str | None,
                   note: str = "") -> dict[str, Any] | None:
    """Ask the gateway at ``admin_url``; None when nothing listens there (decide here instead)."""
    form = {"server": server, "tool": tool, "digest": digest or "", "note": note, "who": operator()}
    return _post(admin_url, home, f"/api/tools/{action}", form)


def decide_call_through(admin_url: str, home: Path, action: Action, hold_id: int, *,
                        note: str = "") -> dict[str, Any] | None:
    """Decide a held call through the gateway at ``admin_url`` (it wakes the call if it holds it); None when
    nothing listens there."""
    return _post(admin_url, home, f"/api/calls/{action}", {"id": str(hold_id), "note": note, "who": operator()})


def _post(admin_url: str, home: Path, path: str, form: dict[str, str]) -> dict[str, Any] | None:
    headers = {"Authorization": f"Bearer {admin_token(home)}", "Accept": "application/json"}
    try:
        answer = httpx.post(f"{admin_url.rstrip('/')}{path}", data=form, headers=headers, timeout=_TIMEOUT_S)
    except httpx.ConnectError:
        return None
    except httpx.HTTPError as exc:
        raise AdminError(f"the admin API at {admin_url} did not answer: {exc}") from exc
    try:
        body = answer.json()
    except ValueError:
        body = {"reason": answer.text.strip()[:300]}
    if answer.status_code == 409:
        raise DetectionError(body.get("reason", "the decision was refused"))
    if answer.status_code in (401, 403):
        raise AccessDenied(f"{admin_url} refused the admin token of {home}: {body.get('reason', '')}",
                           status=answer.status_code)
    if answer.status_code == 503:
        raise AuditUnavailable(body.get("reason", "the audit log cannot record the decision"))
    if answer.status_code != 200:
        raise AdminError(f"{admin_url} answered {answer.status_code}: {body.get('reason', '')}")
    return dict(body)


def decide_here(url: str | None, home: Path, action: Action, server: str, tool: str, *, digest: str | None,
                note: str = "") -> dict[str, Any]:
    """Record and apply the decision with this process's own audit writer (no gateway may be running)."""
    writer = AuditWriter.open(url, home=home)
    try:
        store = DatabasePinStore(writer.database)
        reviewer = Reviewer("cli", operator(), note)
        decide = approve_tool if action == "approve" else reject_tool
        asyncio.run(decide(store, writer, server, tool, seen_digest=digest, reviewer=reviewer))
        return {"ok": True, "action": action} | store.review(server, tool).to_json()
    finally:
        writer.close()


def decide_call_here(db: AuditDatabase, action: Action, hold_id: int, *, note: str = "") -> dict[str, Any]:
    """Store the decision on a held call in ``db``; the gateway holding it records and applies it."""
    decision = "approved" if action == "approve" else "rejected"
    held = HeldCallStore(db).decide(hold_id, decision, by=f"cli {operator()}", note=note)
    return {"ok": True, "action": action, "recorded": False} | held.to_json()
