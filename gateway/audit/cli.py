"""Commands of the audit log: ``audit list|show|verify|export|stats|prune``. Parse, call the library, print."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from attest.errors import AttestError
from attest.keys import PublicKey, load_public_key
from gateway.audit.db import AuditDatabase, default_home, open_database
from gateway.audit.query import (
    EXPORT_COLUMNS,
    RequestFilter,
    iter_requests,
    list_requests,
    parse_time,
    request_detail,
    stats,
)
from gateway.audit.retention import prune as prune_log
from gateway.audit.state import AuditState
from gateway.audit.verify import verify_audit
from gateway.errors import AuditError, AuditTampered

__all__ = ["open_for_cli", "register"]

audit_app = typer.Typer(help="The tamper-evident audit log of every request through the gateway.",
                        no_args_is_help=True)

_DB_HELP = "Audit database URL [default: sqlite:///$MODELGATE_HOME/audit.db, MODELGATE_HOME=~/.modelgate]."
_STATE_HELP = "The gateway's state folder (instance key and witness) [default: $MODELGATE_HOME]."


@contextmanager
def open_for_cli(url: str | None, home: Path | None = None) -> Iterator[AuditDatabase]:
    """The database a command reads (default: the SQLite file of ``home``, else of $MODELGATE_HOME); the
    default file must exist (reading never creates one)."""
    if url is None:
        path = (home or default_home()) / "audit.db"
        if not path.exists():
            raise AuditError(f"no audit database at {path}; give --audit-db, --state-dir or set MODELGATE_HOME")
    db = open_database(url, home=home)
    try:
        yield db
    finally:
        db.close()


def _filters(agent: str | None, session: str | None, decision: str | None, rule: str | None, tool: str | None,
             model: str | None, host: str | None, since: str | None, until: str | None,
             search: str | None) -> RequestFilter:
    return RequestFilter(agent=agent, session=session, decision=decision, rule=rule, tool=tool, model=model,
                         host=host, since=parse_time(since, "--since"),
                         until=parse_time(until, "--until"), text=search)


_AGENT = typer.Option(None, "--agent")
_SESSION = typer.Option(None, "--session")
_DECISION = typer.Option(None, "--decision", help="allow, alert, hold or block.")
_RULE = typer.Option(None, "--rule", help="A rule id with a finding, e.g. policy.tool_not_allowed.")
_TOOL = typer.Option(None, "--tool", help="A tool called by the agent or proposed by the model.")
_MODEL = typer.Option(None, "--model")
_HOST = typer.Option(None, "--host")
_SINCE = typer.Option(None, "--since", help="ISO 8601 time (UTC if no zone) or an age: 30m, 12h, 7d.")
_UNTIL = typer.Option(None, "--until", help="Exclusive; as --since.")
_SEARCH = typer.Option(None, "--search", help="Substring of host, path, model, agent, session, tools or rules.")
_JSON = typer.Option(False, "--json", help="Print JSON.")
_DB = typer.Option(None, "--audit-db", metavar="URL", help=_DB_HELP)


@audit_app.command("list")
def list_command(
    agent: str | None = _AGENT, session: str | None = _SESSION, decision: str | None = _DECISION,
    rule: str | None = _RULE, tool: str | None = _TOOL, model: str | None = _MODEL, host: str | None = _HOST,
    since: str | None = _SINCE, until: str | None = _UNTIL, search: str | None = _SEARCH,
    limit: int = typer.Option(50, "--limit", min=1, max=1000),
    before: int | None = typer.Option(None, "--before", metavar="ID", help="Page: requests older than this id."),
    audit_db: str | None = _DB, as_json: bool = _JSON,
) -> None:
    """Requests newest first, with their decision, status and findings."""
    filters = _filters(agent, session, decision, rule, tool, model, host, since, until, search)
    with open_for_cli(audit_db) as db, db.sessions() as s:
        page = list_requests(s, filters, before=before, limit=limit)
    rows, more = page.rows, page.next_before
    if as_json:
        typer.echo(json.dumps({"ok": True} | page.to_json(), indent=2))
        return
    table = Table(box=None, pad_edge=False, highlight=False)
    for column in ("id", "at", "agent", "decision", "status", "ms", "request", "model", "tools", "rules"):
        table.add_column(column, overflow="fold")
    for r in rows:
        ms = f"{r['latency_us'] / 1000:.0f}" if r["latency_us"] is not None else "-"
        table.add_row(str(r["id"]), r["at"][:23], escape(r["agent"]), r["decision"], str(r["status"] or "-"), ms,
                      escape(f"{r['method']} {r['host']}{r['path']}"[:80]), escape(r["model"] or ""),
                      escape(r["tools"]), escape(r["rules"]))
    console = Console(highlight=False, width=200)
    console.print(table)
    if more is not None:
        console.print(f"more: --before {more}")


@audit_app.command("show")
def show(request_row_id: int = typer.Argument(..., metavar="ID"), audit_db: str | None = _DB,
         as_json: bool = _JSON) -> None:
    """One request: its records (request, responses, events) and stored, redacted bodies."""
    with open_for_cli(audit_db) as db, db.sessions() as s:
        detail = request_detail(s, request_row_id)
    if as_json:
        typer.echo(json.dumps({"ok": True} | detail, indent=2))
        return
    out = Console(highlight=False, soft_wrap=True)
    for key in EXPORT_COLUMNS:
        out.print(f"{key:18} {escape(str(detail[key]))}")
    for record in detail["records"]:
        out.print(f"\n[bold]{record['kind']}[/] id {record['id']} seq {record['seq']} at {record['at']}")
        for finding in record["data"].get("findings", []):
            out.print(f"  {finding['action']:5} {escape(finding['rule'])}: {escape(finding['reason'])}")
    for name in ("request_body", "response_body"):
        if body := detail[name]:
            out.print(f"\n[bold]{name}[/] ({body.get('size', 0)} bytes stored)\n{escape(body.get('text', ''))}")


def _trusted(keys: list[str]) -> dict[str, PublicKey]:
    trusted = {}
    for item in keys:
        instance, sep, path = item.partition("=")
        if not sep:
            raise AuditError(f"--trust-key {item!r}: give INSTANCE_ID=PUBLIC_KEY.pem")
        try:
            trusted[instance] = load_public_key(Path(path))
        except AttestError as exc:
            raise AuditError(f"--trust-key: {exc.reason}") from None
    return trusted


def _state(state_dir: Path | None, *, required: bool) -> AuditState | None:
    home = state_dir or default_home()
    if not (home / "audit" / "instance.json").exists():
        if required or state_dir is not None:
            raise AuditError(f"{home / 'audit'} holds no gateway audit state; give --state-dir")
        return None
    return AuditState.open(home, create=False)


@audit_app.command("verify")
def verify(
    audit_db: str | None = _DB,
    state_dir: Path | None = typer.Option(None, "--state-dir", help=_STATE_HELP),
    trust_key: list[str] = typer.Option([], "--trust-key", metavar="INSTANCE=PEM",
                                        help="Public key of another gateway instance writing this database."),
    as_json: bool = _JSON,
) -> None:
    """Check the hash chain, seals, witness, prune anchors, index and bodies. Exit 1 if anything is wrong."""
    state = _state(state_dir, required=False)
    note = None
    with open_for_cli(audit_db, state_dir) as db:
        if state is not None and state_dir is None and audit_db is not None and state.database_id != db.database_id:
            # The default state folder belongs to the default database; for another one, say so, never guess.
            state, note = None, f"{state.root} belongs to another audit database: give --state-dir"
        try:
            report = verify_audit(db, state=state, trusted_keys=_trusted(trust_key))
        except AuditTampered as exc:
            _tampered(exc, as_json)
    if as_json:
        typer.echo(json.dumps({"ok": True, "note": note} | report.to_json(), indent=2))
        return
    out = Console(highlight=False)
    records = sum(i.records for i in report.instances)
    out.print(f"[green]ok[/] {records} records in {len(report.instances)} chain(s), {report.requests} requests, "
              f"{report.bodies} bodies")
    for i in report.instances:
        out.print(f"   {i.instance}: seq {i.first_seq}..{i.last_seq}, {i.seals} seals (key from {i.key})")
    if report.witness_entries is None:
        out.print(f"   [yellow]no state folder ({escape(note or 'none found')}): truncation of the tail was not "
                  "checked[/]")


def _tampered(exc: AuditTampered, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"ok": False, "error": "AuditTampered", "reason": exc.reason,
                               "problems": [p.to_json() for p in exc.problems]}, indent=2))
    else:
        err = Console(stderr=True, highlight=False, soft_wrap=True)
        err.print(f"[bold red]verification failed:[/] {len(exc.problems)} problem(s)")
        for problem in exc.problems[:50]:
            err.print(f"  {escape(str(problem))}")
    raise typer.Exit(1)


@audit_app.command("export")
def export(
    format: str = typer.Option("jsonl", "--format", help="jsonl or csv."),
    output: Path | None = typer.Option(None, "-o", "--output", help="File to write [default: stdout]."),
    agent: str | None = _AGENT, session: str | None = _SESSION, decision: str | None = _DECISION,
    rule: str | None = _RULE, tool: str | None = _TOOL, model: str | None = _MODEL, host: str | None = _HOST,
    since: str | None = _SINCE, until: str | None = _UNTIL, search: str | None = _SEARCH,
    audit_db: str | None = _DB,
) -> None:
    """Write the matching requests (newest first) as JSON lines or CSV, for a SIEM or a spreadsheet."""
    if format not in ("jsonl", "csv"):
        raise AuditError(f"--format must be jsonl or csv, not {format!r}")
    filters = _filters(agent, session, decision, rule, tool, model, host, since, until, search)
    with open_for_cli(audit_db) as db, db.sessions() as s, _output(output) as stream:
        rows = iter_requests(s, filters)
        if format == "jsonl":
            for row in rows:
                stream.write(json.dumps(row, sort_keys=True) + "\n")
        else:
            writer = csv.DictWriter(stream, fieldnames=EXPORT_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    try:
        with open(path, "w", newline="", encoding="utf-8") as stream:
            yield stream
    except OSError as exc:
        raise AuditError(f"cannot write {path}: {exc.strerror or exc}") from exc


@audit_app.command("stats")
def stats_command(
    agent: str | None = _AGENT, session: str | None = _SESSION, since: str | None = _SINCE,
    until: str | None = _UNTIL, audit_db: str | None = _DB, as_json: bool = _JSON,
) -> None:
    """Counts by decision, agent and rule, and p50/p99 latency."""
    filters = _filters(agent, session, None, None, None, None, None, since, until, None)
    with open_for_cli(audit_db) as db, db.sessions() as s:
        result = stats(s, filters)
    if as_json:
        typer.echo(json.dumps({"ok": True} | result, indent=2))
        return
    out = Console(highlight=False)
    latency = result["latency_ms"]
    out.print(f"{result['requests']} requests, latency p50 {latency['p50']} ms, p99 {latency['p99']} ms")
    for title in ("by_decision", "by_agent", "by_rule"):
        out.print(f"{title.replace('_', ' ')}:")
        for name, count in result[title].items():
            out.print(f"  {count:>10}  {escape(name)}")


@audit_app.command("prune")
def prune(
    before: str = typer.Option(..., "--before", help="Delete records older than this (ISO 8601 or an age: 90d)."),
    audit_db: str | None = _DB,
    state_dir: Path | None = typer.Option(None, "--state-dir", help=_STATE_HELP),
    as_json: bool = _JSON,
) -> None:
    """Delete old records and bodies only they used, leaving a signed anchor so the rest still verifies."""
    when = parse_time(before, "--before")
    state = _state(state_dir, required=True)
    if when is None or state is None:
        raise AuditError("--before and a state folder are required")
    with open_for_cli(audit_db, state_dir) as db:
        result = prune_log(db, state, before=when)
    if as_json:
        typer.echo(json.dumps({"ok": True} | result.to_json(), indent=2))
        return
    Console(highlight=False).print(
        f"[green]ok[/] pruned {result.records} records ({result.requests} requests, {result.bodies} bodies) of "
        f"instance {result.instance}; its chain now starts at seq {result.first_seq}")


def register(app: typer.Typer) -> None:
    """Mount ``audit`` on the root app."""
    app.add_typer(audit_app, name="audit")
