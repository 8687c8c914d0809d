"""Commands of the approvals queue: ``tools list|approve|reject`` (MCP tool pins) and ``calls list|approve|reject``
(held calls). Parse, call the library, print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gateway.admin.client import Action, decide_call_here, decide_call_through, decide_here, decide_through
from gateway.audit.cli import open_for_cli
from gateway.audit.db import default_home
from gateway.audit.holds import HeldCallStore
from gateway.audit.pins import DatabasePinStore

__all__ = ["register"]

tools_app = typer.Typer(help="MCP tools the gateway pinned: quarantines, approvals and rejections.",
                        no_args_is_help=True)
calls_app = typer.Typer(help="Calls the gateway holds for a reviewer: list, approve (release) or reject (refuse).",
                        no_args_is_help=True)

_DB = typer.Option(None, "--audit-db", metavar="URL",
                   help="Audit database URL [default: sqlite:///$MODELGATE_HOME/audit.db].")
_HOME = typer.Option(None, "--home", help="State folder [default: $MODELGATE_HOME or ~/.modelgate].")
_ADMIN = typer.Option("http://127.0.0.1:8090", "--admin-url", envvar="MODELGATE_ADMIN_URL",
                      help="A running gateway's admin listener; used when it answers, else the database directly.")
_DIGEST = typer.Option(None, "--digest", help="The observed definition's SHA-256 you reviewed (from `tools list`); "
                                              "refused if the tool changed since.")
_NOTE = typer.Option("", "--note", help="Why, for the audit log.")
_JSON = typer.Option(False, "--json", help="Print JSON.")


@tools_app.command("list")
def list_command(
    every: bool = typer.Option(False, "--all", help="Every pin, not only quarantined tools."),
    server: str | None = typer.Option(None, "--server", help="Only this MCP server (host[:port]/path)."),
    audit_db: str | None = _DB, as_json: bool = _JSON,
) -> None:
    """Quarantined tools, newest first (with --all: every pinned tool)."""
    with open_for_cli(audit_db) as db:
        store = DatabasePinStore(db)
        if every:
            rows: list[dict[str, Any]] = [{"server": p.server, "tool": p.tool, "status": p.status,
                                           "digest": p.digest, "observed_digest": p.observed_digest,
                                           "reason": p.reason} for p in store.pins(server)]
        else:
            rows = [r.to_json() for r in store.quarantined() if server is None or r.pin.server == server]
    if as_json:
        typer.echo(json.dumps({"ok": True, "tools": rows}, indent=2))
        return
    table = Table(box=None, pad_edge=False, highlight=False)
    for column in ("status", "server", "tool", "pinned", "observed", "reason"):
        table.add_column(column, overflow="fold")
    for r in rows:
        status = "rejected" if r.get("rejected") else r["status"]
        table.add_row(status, escape(r["server"]), escape(r["tool"]), r["digest"][:16],
                      (r["observed_digest"] or "-")[:16], escape(r["reason"]))
    Console(highlight=False, width=200).print(table if rows else "no quarantined tools")


def _decide(action: Action, server: str, tool: str, digest: str | None, note: str, admin_url: str,
            home: Path | None, audit_db: str | None, as_json: bool) -> None:
    state = home or default_home()
    result = decide_through(admin_url, state, action, server, tool, digest=digest, note=note) \
        if (state / "admin-token").exists() else None
    how = f"through {admin_url}"
    if result is None:
        result, how = decide_here(audit_db, state, action, server, tool, digest=digest, note=note), "directly"
    if as_json:
        typer.echo(json.dumps(result | {"recorded": how}, indent=2))
        return
    verb = "approved" if action == "approve" else "rejected"
    Console(highlight=False).print(f"[green]ok[/] {verb} {escape(tool)} of {escape(server)} (recorded {how}); "
                                   f"pinned {result['digest'][:16]}…, status {result['status']}")


@tools_app.command("approve")
def approve_command(server: str = typer.Argument(...), tool: str = typer.Argument(...), digest: str | None = _DIGEST,
                    note: str = _NOTE, admin_url: str = _ADMIN, home: Path | None = _HOME,
                    audit_db: str | None = _DB, as_json: bool = _JSON) -> None:
    """Re-pin a quarantined tool to its observed definition: its calls pass again. Audited."""
    _decide("approve", server, tool, digest, note, admin_url, home, audit_db, as_json)


@tools_app.command("reject")
def reject_command(server: str = typer.Argument(...), tool: str = typer.Argument(...), digest: str | None = _DIGEST,
                   note: str = _NOTE, admin_url: str = _ADMIN, home: Path | None = _HOME,
                   audit_db: str | None = _DB, as_json: bool = _JSON) -> None:
    """Keep a quarantined tool refused and take it out of the review queue. Audited."""
    _decide("reject", server, tool, digest, note, admin_url, home, audit_db, as_json)


@calls_app.command("list")
def calls_list_command(audit_db: str | None = _DB, home: Path | None = _HOME, as_json: bool = _JSON) -> None:
    """Held calls waiting for a decision, the longest waiting first."""
    with open_for_cli(audit_db, home) as db:
        held = HeldCallStore(db).pending()
    if as_json:
        typer.echo(json.dumps({"ok": True, "held": [h.to_json() for h in held]}, indent=2))
        return
    table = Table(box=None, pad_edge=False, highlight=False)
    for column in ("id", "held", "expires", "agent", "stage", "calls", "why"):
        table.add_column(column, overflow="fold")
    for h in held:
        calls = ", ".join(f"{c['name']}({c['arguments'][:80]})" for c in h.calls) or f"{h.protocol} to {h.host}"
        table.add_row(str(h.id), f"{h.held_at:%H:%M:%S}", f"{h.expires_at:%H:%M:%S}", escape(h.agent), h.stage,
                      escape(calls), escape("; ".join(r["reason"] for r in h.reasons)))
    Console(highlight=False, width=200).print(table if held else "no held calls")


def _decide_call(action: Action, hold_id: int, note: str, admin_url: str, home: Path | None, audit_db: str | None,
                 as_json: bool) -> None:
    state = home or default_home()
    result = decide_call_through(admin_url, state, action, hold_id, note=note) \
        if (state / "admin-token").exists() else None
    how = f"through {admin_url}"
    if result is None:
        with open_for_cli(audit_db, state) as db:
            result, how = decide_call_here(db, action, hold_id, note=note), "directly"
    if as_json:
        typer.echo(json.dumps(result | {"decided": how}, indent=2))
        return
    verb = "approved" if action == "approve" else "rejected"
    names = ", ".join(c["name"] for c in result["calls"]) or result["protocol"]
    applied = "recorded and applied by the gateway" if result["recorded"] else \
        "the gateway holding it records and applies it within a second"
    Console(highlight=False).print(f"[green]ok[/] {verb} held call {hold_id} ({escape(names)} of "
                                   f"{escape(result['agent'])}), {how}: {applied}")


_ID = typer.Argument(..., help="The held call's number (from `calls list` or the approvals page).")


@calls_app.command("approve")
def calls_approve_command(hold_id: int = _ID, note: str = _NOTE, admin_url: str = _ADMIN, home: Path | None = _HOME,
                          audit_db: str | None = _DB, as_json: bool = _JSON) -> None:
    """Release a held call: the gateway forwards it (or hands the model's answer to the agent). Audited."""
    _decide_call("approve", hold_id, note, admin_url, home, audit_db, as_json)


@calls_app.command("reject")
def calls_reject_command(hold_id: int = _ID, note: str = _NOTE, admin_url: str = _ADMIN, home: Path | None = _HOME,
                         audit_db: str | None = _DB, as_json: bool = _JSON) -> None:
    """Refuse a held call: the agent gets its protocol's error. Audited."""
    _decide_call("reject", hold_id, note, admin_url, home, audit_db, as_json)


def register(app: typer.Typer) -> None:
    """Mount ``tools`` and ``calls`` on the root app."""
    app.add_typer(tools_app, name="tools")
    app.add_typer(calls_app, name="calls")
