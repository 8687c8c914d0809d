"""The approvals queue: quarantined MCP tools with what changed, and the approve / reject decisions.

The page shows the pinned and the observed definition side by side as a word diff of the description
and a line diff of the input schema; the form posts the observed digest the reviewer saw, so an
approval never lands on a definition that changed after the page was drawn.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from gateway.admin.approvals import Reviewer, approve_tool, reject_tool
from gateway.admin.render import error_page, page
from gateway.audit.models import Record
from gateway.audit.pins import PinReview
from gateway.errors import AuditUnavailable, DetectionError

__all__ = ["approvals_page", "decide", "decide_api", "pins_api", "word_diff"]

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


def _decisions(ctx: Any) -> list[dict[str, Any]]:
    with ctx.db.sessions() as session:
        rows = session.execute(select(Record.id, Record.at, Record.data).where(Record.kind == "event")
                               .order_by(Record.at.desc(), Record.id.desc()).limit(_RECENT_EVENTS))
        out = []
        for row in rows:
            data = json.loads(row.data)
            if str(data.get("event", "")).startswith("approval."):
                out.append({"id": row.id, "at": row.at, "event": data["event"], "details": data.get("details", {})})
        return out


def approvals_page(request: Request, *, error: str | None = None, status: int = 200) -> HTMLResponse:
    ctx = request.app.state.admin
    reviews = ctx.pins.quarantined()
    pending = [_view(r) for r in reviews if not r.rejected]
    rejected = [_view(r) for r in reviews if r.rejected]
    return page(request, "approvals.html", status=status, pending=pending, rejected=rejected,
                decisions=_decisions(ctx), error=error, done=request.query_params.get("done"))


async def _apply(request: Request, action: str) -> tuple[str, str]:
    """Run the decision in ``request``'s form; (tool, server) decided, or DetectionError/AuditUnavailable."""
    ctx = request.app.state.admin
    form: dict[str, str] = request.state.form
    server, tool = form.get("server", ""), form.get("tool", "")
    if not server or not tool:
        raise DetectionError("the form names no server and tool")
    principal = request.state.principal
    if principal.session is not None:
        reviewer = Reviewer("ui", principal.who, form.get("note", ""))
    else:  # a Bearer caller (the CLI) names its operator; the token is what authenticated it
        named = form.get("who", "")[:128]
        reviewer = Reviewer("api", f"{named} ({principal.who})" if named else principal.who, form.get("note", ""))
    seen = form.get("digest") or None
    decide_fn = approve_tool if action == "approve" else reject_tool
    await decide_fn(ctx.pins, ctx.writer, server, tool, seen_digest=seen, reviewer=reviewer)
    return tool, server


_ACTIONS = ("approve", "reject")


async def decide(request: Request) -> Response:
    action = request.path_params["action"]
    if action not in _ACTIONS:
        return error_page(request, 404, f"nothing at {request.url.path}")
    try:
        tool, server = await _apply(request, action)
    except DetectionError as exc:
        return await run_in_threadpool(approvals_page, request, error=exc.reason, status=409)
    except AuditUnavailable as exc:
        return await run_in_threadpool(approvals_page, request, error=f"not recorded, so not applied: {exc.reason}",
                                       status=503)
    done = urlencode({"done": f"{action}d {tool} of {server}"})
    return RedirectResponse(f"/approvals?{done}", status_code=303)


async def decide_api(request: Request) -> Response:
    action = request.path_params["action"]
    if action not in _ACTIONS:
        return error_page(request, 404, f"nothing at {request.url.path}")
    try:
        tool, server = await _apply(request, action)
    except DetectionError as exc:
        return JSONResponse({"ok": False, "error": type(exc).__name__, "reason": exc.reason}, status_code=409)
    except AuditUnavailable as exc:
        return JSONResponse({"ok": False, "error": type(exc).__name__, "reason": exc.reason}, status_code=503)
    review = await run_in_threadpool(request.app.state.admin.pins.review, server, tool)
    return JSONResponse({"ok": True, "action": action} | review.to_json())


def pins_api(request: Request) -> JSONResponse:
    ctx = request.app.state.admin
    return JSONResponse({"ok": True, "quarantined": [r.to_json() for r in ctx.pins.quarantined()]})
