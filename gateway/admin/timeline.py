"""A session as one story: each LLM turn, tool call and MCP call in order, with what was said and decided.

A hijack reads top to bottom: the tool result that carried the instruction, the model's next turn that
proposed a call it should not, the gateway's finding and decision. Each step is a request with its
answer (records are grouped by request id), or an event such as an approval. Pages hold ``PAGE``
records and continue after the last one shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import HTMLResponse

from gateway.admin.exchange import Exchange, read_exchange
from gateway.admin.render import page
from gateway.admin.requests_view import kind, rank
from gateway.audit.models import Body, RequestIndex
from gateway.audit.query import session_timeline
from gateway.errors import AuditError

__all__ = ["PAGE", "Step", "session_page"]

PAGE = 300
_EXCERPT = 280


@dataclass
class Step:
    record: dict[str, Any]
    """The request record (or the event, or a response whose request is on an earlier page)."""
    row: dict[str, Any] | None = None
    """The request's index row: id, decision, status, latency."""
    answer: dict[str, Any] | None = None
    exchange: Exchange | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)
    """(who, what) sentences of the story."""

    @property
    def ranked(self) -> list[dict[str, Any]]:
        """The findings, the one that matters most first."""
        return sorted(self.findings, key=rank, reverse=True)


def session_page(request: Request) -> HTMLResponse:
    ctx = request.app.state.admin
    session_id = request.query_params.get("id", "").strip()
    if not session_id:
        raise AuditError("give a session id (?id=...)")
    after_text = request.query_params.get("after", "").strip()
    if after_text and not after_text.isdigit():
        raise AuditError("after must be a record id")
    with ctx.db.sessions() as session:
        records = session_timeline(session, session_id, after=int(after_text) if after_text else None,
                                   limit=PAGE)
        ids = [r["request_id"] for r in records if r["kind"] == "request" and r["request_id"]]
        rows = {row.request_id: row for row in session.scalars(
            select(RequestIndex).where(RequestIndex.request_id.in_(ids)))} if ids else {}
        digests = {d for row in rows.values() for d in (row.request_body, row.response_body) if d}
        bodies = {digest: content for digest, content in session.execute(
            select(Body.sha256, Body.content).where(Body.sha256.in_(digests)))} if digests else {}
    steps = _steps(records, rows, bodies)
    more = records[-1]["id"] if len(records) == PAGE else None
    agents = sorted({s.row["agent"] for s in steps if s.row})
    return page(request, "session.html", session_id=session_id, steps=steps, more=more, agents=agents,
                continued=bool(after_text))


def _steps(records: list[dict[str, Any]], rows: dict[str, Any], bodies: dict[str, bytes]) -> list[Step]:
    steps: list[Step] = []
    open_steps: dict[str, Step] = {}
    for record in records:
        rid = record["request_id"]
        if record["kind"] == "response" and rid in open_steps:
            step = open_steps[rid]
            step.answer = record
            step.findings += record["data"].get("findings", [])
            continue
        step = Step(record, findings=list(record["data"].get("findings", [])))
        if record["kind"] == "request" and rid:
            row = rows.get(rid)
            step.row = {c: getattr(row, c) for c in ("id", "agent", "decision", "status", "latency_us",
                                                     "protocol", "model", "host", "path", "request_body",
                                                     "response_body")} if row else None
            open_steps[rid] = step
        steps.append(step)
    for step in steps:
        if step.record["kind"] == "request":
            step.exchange = read_exchange(step.record["data"], _body(bodies, step.row, "request_body"),
                                          step.answer["data"] if step.answer else None,
                                          _body(bodies, step.row, "response_body"))
        step.lines = _story(step)
    return steps


def _body(bodies: dict[str, bytes], row: dict[str, Any] | None, name: str) -> bytes | None:
    return bodies.get(row[name]) if row is not None and row[name] else None


def _story(step: Step) -> list[tuple[str, str]]:
    data = step.record["data"]
    if step.record["kind"] == "event":
        details = data.get("details") or {}
        subject = " ".join(str(details[k]) for k in ("tool", "server") if details.get(k))
        if str(data.get("event", "")).startswith("hold."):  # a held call's outcome: which call, decided by whom
            names = ", ".join(str(c.get("name")) for c in details.get("calls", ())) or "a request"
            subject = f"held call {details.get('id')} ({names}) by {details.get('decided_by') or 'nobody'}"
        return [("gateway", f"{data.get('event')} {subject}".strip())]
    if step.record["kind"] != "request":
        return [(step.record["kind"], f"record {step.record['id']}")]
    agent, lines = data.get("agent") or "agent", []
    exchange = step.exchange
    sent = exchange.request if exchange else None
    what = kind(data.get("protocol", ""), data)
    if data.get("protocol") == "mcp":
        call = sent.tool_call if sent else None
        if call is not None:
            lines.append((agent, f"{what} {call.name}({_cut(call.arguments_raw)}) on {call.server or data['host']}"))
        else:
            lines.append((agent, f"{what} on {data['host']}{data['path']}"))
    elif what.startswith("LLM"):
        if sent is not None and sent.tool_results:
            newest = sent.tool_results[-1]
            lines.append(("tool result", f"{newest.name or newest.tool_call_id or 'a tool'} returned "
                                         f"“{_cut(newest.content)}”"))
        user = next((m for m in reversed(sent.messages) if m.role == "user"), None) if sent else None
        said = f": “{_cut(user.text)}”" if user is not None and user.text else ""
        lines.append((agent, f"asks {data.get('model') or 'the model'}{said}"))
    else:
        lines.append((agent, f"{data.get('method')} {data['host']}{data['path']}"))
    answer = exchange.response if exchange else None
    if answer is not None:
        who = "model" if what.startswith("LLM") else "server"
        for call in answer.tool_calls:
            lines.append((who, f"proposes {call.name}({_cut(call.arguments_raw)})"))
        if answer.tool_result is not None:
            lines.append((who, f"returns “{_cut(answer.tool_result.content)}”"))
        if answer.tools:
            lines.append((who, f"lists {len(answer.tools)} tools: {_cut(', '.join(t.name for t in answer.tools))}"))
        if answer.text and not (answer.tool_calls or answer.tool_result or answer.tools):
            lines.append((who, f"answers “{_cut(answer.text)}”"))
    elif step.answer is not None:
        calls = step.answer["data"].get("tool_calls") or []
        if calls:
            lines.append(("model", f"proposes {', '.join(calls)}"))
    return lines


def _cut(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…"
