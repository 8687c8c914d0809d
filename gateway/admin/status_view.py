"""The dashboard, the model-load history, the integrity page and ``/metrics``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from gateway.admin.charts import Series, stacked_bars
from gateway.admin.dashboard import WINDOWS, dashboard
from gateway.admin.render import page
from gateway.audit.query import model_loads
from gateway.errors import AuditError, AuditUnavailable

__all__ = ["dashboard_page", "integrity_page", "load_view", "metrics", "models_page", "verify_now"]

_DECISION_CSS = {"allow": "c-allow", "alert": "c-alert", "hold": "c-hold", "block": "c-block"}


def _palette(series: dict[str, list[int]]) -> list[Series]:
    return [Series(name, values, "c-other" if name == "other" else f"c{i}")
            for i, (name, values) in enumerate(series.items())]


def dashboard_page(request: Request) -> HTMLResponse:
    ctx = request.app.state.admin
    window = request.query_params.get("window", "24h")
    with ctx.db.sessions() as session:
        board = dashboard(session, window)
    decisions = [Series(d, v, _DECISION_CSS[d]) for d, v in board.by_decision.items()]
    rules, agents = _palette(board.by_rule), _palette(board.by_agent)
    charts = {
        "decisions": stacked_bars("Requests by decision", board.buckets, decisions,
                                  label_format=board.label_format),
        "rules": stacked_bars("Requests with a finding, per rule", board.buckets, rules,
                              label_format=board.label_format),
        "agents": stacked_bars("Blocked, held and alerted requests, per agent", board.buckets, agents,
                               label_format=board.label_format),
    }
    return page(request, "dashboard.html", board=board, charts=charts, windows=list(WINDOWS),
                legends={"decisions": decisions, "rules": rules, "agents": agents},
                writer=ctx.writer.stats, queue=len([r for r in ctx.pins.quarantined() if not r.rejected]),
                held=len(ctx.held.pending()),
                integrity=ctx.integrity.last)


def models_page(request: Request) -> HTMLResponse:
    ctx = request.app.state.admin
    before_text = request.query_params.get("before", "").strip()
    if before_text and not before_text.isdigit():
        raise AuditError("before must be a record id")
    with ctx.db.sessions() as session:
        loads = model_loads(session, before=int(before_text) if before_text else None, limit=20)
    return page(request, "models.html", loads=[load_view(r) for r in loads],
                more=loads[-1]["id"] if len(loads) == 20 else None)


_ATTESTATION = {"accepted": False, "authentic": False, "fresh": False, "acceptable": False, "simulated": False,
                "platform": None, "format": None, "provider": None, "measurement": {}, "tcb": {}, "debug": False,
                "captured_at": None, "verified_at": None, "violations": []}
_SIGNER = {"kind": "?", "key_id": None, "identity": [], "issuer": None}
_SBOM = {"name": None, "version": None, "supplier": None, "licenses": [], "architecture": None, "parameters": None,
         "quantization": None, "formats": [], "files": 0, "serial": None, "spec_version": None, "sha256": None}


def load_view(record: dict[str, Any]) -> dict[str, Any]:
    """A model-load record with every field the page shows (older or partial records lack some)."""
    d = record["data"]
    attestation, signer, sbom = d.get("attestation"), d.get("signer"), d.get("sbom")
    return {"id": record["id"], "at": record["at"], "model": d.get("model") or "?", "decision": d.get("decision"),
            "policy": d.get("policy"), "reason": d.get("reason"), "manifest_digest": d.get("manifest_digest"),
            "files": d.get("files") or {}, "bytes": d.get("bytes") or 0,
            "sbom": _SBOM | sbom if isinstance(sbom, dict) else None,
            "signer": _SIGNER | signer if isinstance(signer, dict) else None,
            "attestation": _ATTESTATION | attestation if isinstance(attestation, dict) else None}


def integrity_page(request: Request) -> HTMLResponse:
    ctx = request.app.state.admin
    checker = ctx.integrity
    return page(request, "integrity.html", result=checker.last, running=checker.running_since,
                checkpoints=checker.checkpoints(), witness=checker.witness(), instance=ctx.writer.instance_id)


def verify_now(request: Request) -> Response:
    request.app.state.admin.integrity.start()
    return RedirectResponse("/integrity", status_code=303)


def metrics(request: Request) -> PlainTextResponse:
    """Counters from memory; the quarantine gauge from the database, left out while it cannot be read (a
    scrape must work exactly when the audit database is down: the failed commits say so)."""
    ctx = request.app.state.admin
    try:
        quarantined: int | None = len(ctx.pins.quarantined())
    except AuditUnavailable:
        quarantined = None
    text = ctx.metrics.render(writer=ctx.writer.stats, quarantined=quarantined)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
