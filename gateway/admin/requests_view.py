"""The request list (filtered, keyset-paged both ways) and one request's detail: findings in place, chain position.

A list page is one ``list_requests`` query plus one primary-key lookup of its records' content (for
the kind, the MCP method and the top detection), so a page costs the same at row 10 and row 1,000,000,
going older (``before``) or back newer (``after``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from gateway.admin.exchange import read_exchange
from gateway.admin.highlight import highlight
from gateway.admin.render import error_page, page
from gateway.audit.agents import list_agents
from gateway.audit.models import Body, Record
from gateway.audit.query import Page, RequestFilter, list_requests, parse_time, request_detail
from gateway.errors import AuditError
from gateway.findings import ACTION_RANK, SEVERITY_RANK

__all__ = ["FILTERS", "annotate", "detail_page", "filters_of", "kind", "list_api", "list_page", "rank", "subject",
           "top_finding"]

FILTERS = ("agent", "session", "decision", "rule", "tool", "model", "host", "since", "until", "q")
_LLM = {"openai.chat": "LLM", "openai.completions": "LLM", "anthropic.messages": "LLM"}


def filters_of(request: Request) -> tuple[RequestFilter, dict[str, str]]:
    """The list's filters from the query string, and the non-empty ones as given (to refill the form)."""
    given = {k: v.strip() for k in FILTERS if (v := request.query_params.get(k, "")).strip()}
    return RequestFilter(
        agent=given.get("agent"), session=given.get("session"), decision=given.get("decision"),
        rule=given.get("rule"), tool=given.get("tool"), model=given.get("model"), host=given.get("host"),
        since=parse_time(given.get("since"), "since"), until=parse_time(given.get("until"), "until"),
        text=given.get("q"),
    ), given


def _int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise AuditError(f"{name} must be a record id, not {value[:40]!r}")
    return int(value)


def _page_of(request: Request, session: Session) -> tuple[Page, dict[str, str], bool]:
    """The page the query string asks for, the filters as given, and whether it is not the newest page."""
    filters, given = filters_of(request)
    limit = min(200, max(1, _int(request, "limit") or 50))
    before, after = _int(request, "before"), _int(request, "after")
    result = list_requests(session, filters, before=before, after=after, limit=limit)
    if "limit" in request.query_params:
        given["limit"] = str(limit)
    return result, given, before is not None or after is not None


def list_page(request: Request) -> HTMLResponse:
    ctx = request.app.state.admin
    with ctx.db.sessions() as session:
        result, given, paged = _page_of(request, session)
        rows = annotate(session, result.rows)
    agents = [a.name for a in list_agents(ctx.db)]
    older = urlencode(given | {"before": result.next_before}) if result.next_before is not None else None
    newer = urlencode(given | {"after": result.next_after}) if result.next_after is not None else None
    return page(request, "requests.html", rows=rows, form={k: given.get(k, "") for k in FILTERS}, older=older,
                newer=newer, newest=urlencode(given), agents=agents, searched="q" in given, paged=paged)


def list_api(request: Request) -> JSONResponse:
    with request.app.state.admin.db.sessions() as session:
        result, _given, _paged = _page_of(request, session)
    return JSONResponse(result.to_json())


def annotate(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row with its kind, subject (model, tool or host) and top detection, from its records' content.

    One query by request id (its own index) finds the page's request and response records.
    """
    sent: dict[str, dict[str, Any]] = {}
    answers: dict[str, list[dict[str, Any]]] = {}
    wanted = [r["request_id"] for r in rows]
    if wanted:
        for rid, kind_, text in session.execute(select(Record.request_id, Record.kind, Record.data)
                                                .where(Record.request_id.in_(wanted))):
            if kind_ == "request":
                sent[rid] = json.loads(text)
            elif kind_ == "response":
                answers.setdefault(rid, []).append(json.loads(text))
    out = []
    for row in rows:
        request = sent.get(row["request_id"], {})
        findings = [*request.get("findings", ()), *(f for a in answers.get(row["request_id"], ())
                                                     for f in a.get("findings", ()))]
        out.append(row | {"kind": kind(row["protocol"], request), "subject": subject(row, request),
                          "top": top_finding(findings), "findings": len(findings)})
    return out


def kind(protocol: str, sent: dict[str, Any]) -> str:
    if protocol in _LLM:
        return f"LLM {protocol}"
    if protocol == "mcp":
        return f"MCP {sent.get('mcp_method') or '?'}"
    return f"HTTP {sent.get('method') or ''}".strip()


def subject(row: dict[str, Any], sent: dict[str, Any]) -> str:
    if row["protocol"] == "mcp":
        return sent.get("tool_call") or row["host"]
    if row["protocol"] == "http":
        return row["host"]
    return row["model"] or "?"


def rank(finding: dict[str, Any]) -> tuple[int, int, float]:
    return (ACTION_RANK.get(finding.get("action", ""), 0), SEVERITY_RANK.get(finding.get("severity", ""), 0),
            float(finding.get("score") or 0))


def top_finding(findings: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The finding that matters most: strongest action, then severity, then score."""
    return max(findings, key=rank, default=None)


def detail_page(request: Request) -> Response:
    ctx = request.app.state.admin
    row_id = request.path_params["id"]
    with ctx.db.sessions() as session:
        try:
            detail = request_detail(session, row_id)
        except AuditError as exc:
            return error_page(request, 404, exc.reason)
        raw = _raw_bodies(session, detail["request_body"], detail["response_body"])
    records = detail["records"]
    sent = next((r for r in records if r["kind"] == "request"), None)
    answers = [r for r in records if r["kind"] == "response"]
    findings = []
    for record in (sent, *answers):
        for f in (record or {}).get("data", {}).get("findings", ()):
            findings.append(f | {"n": len(findings) + 1, "phase": record["kind"] if record else "?"})
    decision = detail["decision"]
    deciding = [f for f in findings if f["action"] == decision] if decision != "allow" else []
    evidence = [(f["n"], f.get("evidence", ())) for f in findings]
    bodies = {}
    for name in ("request_body", "response_body"):
        body = detail[name]
        if body is not None and "text" in body:
            bodies[name] = body | {"marked": highlight(body["text"], evidence)}
        else:
            bodies[name] = body
    exchange = read_exchange(sent["data"], raw[0], answers[-1]["data"] if answers else None, raw[1]) \
        if sent is not None else None
    return page(request, "detail.html", detail=detail, records=records, sent=sent, answers=answers,
                findings=findings, deciding=deciding, bodies=bodies, exchange=exchange)


def _raw_bodies(session: Session, *bodies: dict[str, Any] | None) -> list[bytes | None]:
    out: list[bytes | None] = []
    for body in bodies:
        digest = body.get("sha256") if body and not body.get("missing") else None
        out.append(session.scalar(select(Body.content).where(Body.sha256 == digest)) if digest else None)
    return out
