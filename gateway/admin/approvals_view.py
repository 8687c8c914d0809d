"""The approvals queue: held calls waiting for a reviewer, quarantined MCP tools with what changed, decisions.

A held call shows who made it, what it calls with which (redacted) arguments, why it was held and until
when it waits; approving releases it, rejecting refuses it. A quarantined tool shows the pinned and the
observed definition as a word diff of the description and a line diff of the input schema; the form
posts the observed digest the reviewer saw, so an approval never lands on a definition that changed
after the page was drawn.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Awaitable, Callable, Collection
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from gateway.admin.approvals import Reviewer, approve_tool, decide_call, reject_tool
from gateway.admin.render import error_page, page
from gateway.audit.holds import Decision
from gateway.audit.models import Record, RequestIndex
from gateway.audit.pins import PinReview
from gateway.errors import AuditUnavailable, DetectionError

__all__ = ["approvals_page", "calls_api", "decide", "decide_api", "decide_call_api", "decide_call_form", "pins_api",
           "word_diff"]

_WORDS = re.compile(r"\s+|[^\s]+")
_RECENT_EVENTS = 500


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """(op, text) segments, op one of ``same``, ``del``, ``ins``: ``old`` becomes ``new`` word by word."""
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(("same", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("del", "".join(a[i1:i2])))
        if j2 > j1:
            out.append(("ins", "".join(b[j1:j2])))
    return out


def _schema_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    def lines(schema: dict[str, Any]) -> list[str]:
        return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False, default=str).splitlines()

    return list(difflib.unified_diff(lines(old), lines(new), "pinned", "observed", lineterm="", n=2))


def _view(review: PinReview) -> dict[str, Any]:
    pin = review.pin
    observed = pin.observed
    return {"review": review, "pin": pin, "observed": observed,
            "description": word_diff(pin.description, observed.description) if observed else [],
            "schema": _schema_diff(pin.input_schema, observed.input_schema) if observed else []}


def _decision(event: str, details: dict[str, Any]) -> dict[str, Any]:
    """A tool's or a held call's decision event as one table row: what was decided, where, by whom."""
    if event.startswith("hold."):
        names = ", ".join(str(c.get("name")) for c in details.get("calls", ())) or "(no tool call)"
        return {"what": names, "where": f"held call {details.get('id')} of {details.get('agent')}",
                "by": details.get("decided_by") or "", "note": details.get("note", ""), "granted": event.endswith(
                    ".approved")}
    return {"what": details.get("tool", "-"), "where": details.get("server", "-"),
            "by": f"{details.get('via', '')} {details.get('by', '')}", "note": details.get("note", ""),
            "granted": event == "approval.granted"}


def _decisions(ctx: Any) -> list[dict[str, Any]]:
    with ctx.db.sessions() as session:
        rows = session.execute(select(Record.id, Record.at, Record.data).where(Record.kind == "event")
                               .order_by(Record.at.desc(), Record.id.desc()).limit(_RECENT_EVENTS))
        out = []
        for row in rows:
            data = json.loads(row.data)
            event = str(data.get("event", ""))
            if event.startswith(("approval.", "hold.")):
                out.append({"id": row.id, "at": row.at, "event": event} | _decision(event, data.get("details", {})))
        return out


def _held(ctx: Any) -> list[dict[str, Any]]:
    """The calls waiting for a decision, each with the list row of its request (for the link)."""
    held = ctx.held.pending()
    with ctx.db.sessions() as session:
        rows = {rid: n for rid, n in session.execute(select(RequestIndex.request_id, RequestIndex.id)
                                                    .where(RequestIndex.request_id.in_([h.request_id for h in held])))}
    return [{"call": h, "row": rows.get(h.request_id)} for h in held]


def approvals_page(request: Request, *, error: str | None = None, status: int = 200) -> HTMLResponse:
    ctx = request.app.state.admin
    reviews = ctx.pins.quarantined()
    pending = [_view(r) for r in reviews if not r.rejected]
    rejected = [_view(r) for r in reviews if r.rejected]
    return page(request, "approvals.html", status=status, held=_held(ctx), pending=pending, rejected=rejected,
                decisions=_decisions(ctx), error=error, done=request.query_params.get("done"))


def _reviewer(request: Request) -> Reviewer:
    form: dict[str, str] = request.state.form
    principal = request.state.principal
    if principal.session is not None:
        return Reviewer("ui", principal.who, form.get("note", ""))
    named = form.get("who", "")[:128]  # a Bearer caller (the CLI) names its operator; the token authenticated it
    return Reviewer("api", f"{named} ({principal.who})" if named else principal.who, form.get("note", ""))


Outcome = tuple[dict[str, Any], str]
"""A decision carried out: what the API answers, and what the page says once it is done."""
_TOOL_ACTIONS = ("approve", "reject")
_CALL_ACTIONS: dict[str, Decision] = {"approve": "approved", "reject": "rejected"}


async def _tool(request: Request, action: str) -> Outcome:
    """The decision on the quarantined tool the form names; DetectionError or AuditUnavailable if it is not taken."""
    ctx = request.app.state.admin
    form: dict[str, str] = request.state.form
    server, tool = form.get("server", ""), form.get("tool", "")
    if not server or not tool:
        raise DetectionError("the form names no server and tool")
    decide_fn = approve_tool if action == "approve" else reject_tool
    try:
        await decide_fn(ctx.pins, ctx.writer, server, tool, seen_digest=form.get("digest") or None,
                        reviewer=_reviewer(request))
    except AuditUnavailable as exc:
        raise AuditUnavailable(f"not recorded, so not applied: {exc.reason}") from exc
    review = await run_in_threadpool(ctx.pins.review, server, tool)
    return review.to_json(), f"{action}d {tool} of {server}; the decision is in the audit log"


async def _call(request: Request, action: str) -> Outcome:
    """The decision on the held call the form names; DetectionError or AuditUnavailable if it is not taken."""
    ctx = request.app.state.admin
    number = request.state.form.get("id", "").strip()
    if not number.isdigit() or len(number) > 18:
        raise DetectionError(f"the form names no held call (id {number[:20]!r})")
    call, recorded = await decide_call(ctx.held, ctx.holds, int(number), _CALL_ACTIONS[action],
                                       reviewer=_reviewer(request))
    how = "recorded and applied" if recorded else "the gateway holding it records and applies it within a second"
    return call.to_json() | {"recorded": recorded}, f"{_CALL_ACTIONS[action]} held call {call.id} ({how})"


async def _decide(request: Request, actions: Collection[str], run: Callable[[Request, str], Awaitable[Outcome]], *,
                  api: bool) -> Response:
    """Carry out a posted decision; the page (a redirect, or the queue with the reason) or the API's JSON."""
    action = request.path_params["action"]
    if action not in actions:
        return error_page(request, 404, f"nothing at {request.url.path}")
    try:
        answer, done = await run(request, action)
    except (DetectionError, AuditUnavailable) as exc:
        status = 409 if isinstance(exc, DetectionError) else 503
        if api:
            return JSONResponse({"ok": False, "error": type(exc).__name__, "reason": exc.reason}, status_code=status)
        return await run_in_threadpool(approvals_page, request, error=exc.reason, status=status)
    if api:
        return JSONResponse({"ok": True, "action": action} | answer)
    return RedirectResponse(f"/approvals?{urlencode({'done': done})}", status_code=303)


async def decide(request: Request) -> Response:
    return await _decide(request, _TOOL_ACTIONS, _tool, api=False)


async def decide_api(request: Request) -> Response:
    return await _decide(request, _TOOL_ACTIONS, _tool, api=True)


async def decide_call_form(request: Request) -> Response:
    return await _decide(request, _CALL_ACTIONS, _call, api=False)


async def decide_call_api(request: Request) -> Response:
    return await _decide(request, _CALL_ACTIONS, _call, api=True)


def pins_api(request: Request) -> JSONResponse:
    ctx = request.app.state.admin
    return JSONResponse({"ok": True, "quarantined": [r.to_json() for r in ctx.pins.quarantined()]})


def calls_api(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "held": [h.to_json() for h in request.app.state.admin.held.pending()]})
