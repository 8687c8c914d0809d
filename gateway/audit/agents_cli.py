"""Commands of the agent registry: ``agents add|list|revoke``. Parse, call the library, print."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.markup import escape

from gateway.audit.agents import add_agent, list_agents, revoke_agent
from gateway.audit.cli import open_for_cli
from gateway.audit.db import open_database

__all__ = ["register"]

agents_app = typer.Typer(help="Agents allowed through the gateway, and their API keys.", no_args_is_help=True)

_DB = typer.Option(None, "--audit-db", metavar="URL",
                   help="Audit database URL [default: sqlite:///$MODELGATE_HOME/audit.db].")
_JSON = typer.Option(False, "--json", help="Print JSON.")


@agents_app.command("add")
def add(
    name: str = typer.Argument(..., help="The agent's name, as the audit log shows it."),
    profile: str = typer.Option("default", "--profile", help="The policy profile its requests are judged by."),
    audit_db: str | None = _DB, as_json: bool = _JSON,
) -> None:
    """Issue an API key for a new agent. The key is printed once: only its hash is kept."""
    db = open_database(audit_db)
    try:
        issued = add_agent(db, name, profile=profile)
    finally:
        db.close()
    if as_json:
        typer.echo(json.dumps({"ok": True, "key": issued.key} | issued.agent.to_json(), indent=2))
        return
    out = Console(highlight=False)
    out.print(f"[green]ok[/] agent {escape(name)} (profile {escape(profile)}); its API key, shown only now:")
    typer.echo(issued.key)


@agents_app.command("list")
def list_command(audit_db: str | None = _DB, as_json: bool = _JSON) -> None:
    """Every agent, active and revoked."""
    with open_for_cli(audit_db) as db:
        agents = list_agents(db)
    if as_json:
        typer.echo(json.dumps({"ok": True, "agents": [a.to_json() for a in agents]}, indent=2))
        return
    out = Console(highlight=False)
    for a in agents:
        status = f"revoked {a.revoked_at:%Y-%m-%d %H:%M}" if a.revoked_at else "active"
        out.print(f"{escape(a.name):24} {escape(a.profile):16} {a.key_prefix}...  {status}")


@agents_app.command("revoke")
def revoke(name: str = typer.Argument(...), audit_db: str | None = _DB, as_json: bool = _JSON) -> None:
    """Revoke an agent's key; gateways refuse it within seconds."""
    with open_for_cli(audit_db) as db:
        agent = revoke_agent(db, name)
    if as_json:
        typer.echo(json.dumps({"ok": True} | agent.to_json(), indent=2))
        return
    Console(highlight=False).print(f"[green]ok[/] revoked {escape(name)}")


def register(app: typer.Typer) -> None:
    """Mount ``agents`` on the root app."""
    app.add_typer(agents_app, name="agents")
