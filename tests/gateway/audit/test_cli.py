"""``modelgate audit ...`` through the real entry point's error handling: output, --json and exit codes."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from sqlalchemy import update

import modelgate.cli
from gateway.audit import agents_cli, cli
from gateway.audit.db import open_database
from gateway.audit.models import Record
from gateway.audit.writer import AuditWriter
from tests.gateway.audit.conftest import fill

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture()
def mg(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path) -> Run:
    """The root command with this package's groups mounted, as the lead mounts them in modelgate/cli.py."""
    app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
    app.callback()(lambda: None)
    cli.register(app)
    agents_cli.register(app)
    monkeypatch.setattr(modelgate.cli, "app", app)
    monkeypatch.setenv("MODELGATE_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = modelgate.cli.main([str(a) for a in args])
        out = capsys.readouterr()
        return rc, out.out, out.err

    return run


@pytest.fixture()
def logged(home: Path) -> str:
    """Nine requests in the default database of MODELGATE_HOME."""
    url = f"sqlite:///{home / 'audit.db'}"
    writer = AuditWriter.open(url, home=home)
    for n in range(9):
        fill(writer, 1, start=n)
    asyncio.run(writer.record_event("approval.granted", request_id="req-3", data={"by": "carol"}))
    writer.close()
    return url


def test_list_show_stats(mg: Run, logged: str) -> None:
    rc, out, _ = mg("audit", "list", "--json")
    page = json.loads(out)
    assert rc == 0 and page["ok"] and [r["request_id"] for r in page["requests"]][:2] == ["req-8", "req-7"]
    rc, out, _ = mg("audit", "list", "--decision", "block", "--json")
    assert [r["request_id"] for r in json.loads(out)["requests"]] == ["req-3"]
    rc, out, _ = mg("audit", "list", "--limit", "2", "--since", "1h")
    assert rc == 0 and "agent-a" in out and "POST 127.0.0.1/v1/chat/completions" in out and "more: --before" in out
    blocked = json.loads(mg("audit", "list", "--tool", "search", "--json")[1])["requests"]
    assert [r["request_id"] for r in blocked] == ["req-8", "req-4", "req-0"]
    row_id = next(r["id"] for r in page["requests"] if r["request_id"] == "req-5")
    rc, out, _ = mg("audit", "show", str(row_id), "--json")
    detail = json.loads(out)
    assert rc == 0 and detail["request_id"] == "req-5" and detail["request_body"]["text"].startswith('{"n": 5')
    rc, out, _ = mg("audit", "show", str(row_id))
    assert rc == 0 and "request_body" in out and "response" in out
    rc, out, _ = mg("audit", "stats", "--json")
    assert rc == 0 and json.loads(out)["requests"] == 9 and json.loads(out)["by_decision"]["block"] == 1
    rc, out, _ = mg("audit", "stats")
    assert rc == 0 and "9 requests" in out and "policy.tool_not_allowed" in out


def test_export(mg: Run, logged: str, tmp_path: Path) -> None:
    rc, out, _ = mg("audit", "export", "--format", "jsonl", "--session", "sess-0")
    lines = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and [r["request_id"] for r in lines] == ["req-6", "req-3", "req-0"]
    rc, _, _ = mg("audit", "export", "--format", "csv", "-o", tmp_path / "out.csv")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text())))
    assert rc == 0 and len(rows) == 9 and rows[0]["decision"] in ("allow", "alert", "block")
    rc, _, err = mg("audit", "export", "--format", "xml")
    assert rc == 2 and "jsonl or csv" in err


def test_verify_then_tamper(mg: Run, logged: str) -> None:
    rc, out, _ = mg("audit", "verify")
    assert rc == 0 and "ok" in out and "seals" in out
    db = open_database(logged)
    with db.engine.begin() as connection:
        connection.execute(update(Record).where(Record.request_id == "req-2").values(session="x"))
    db.close()
    rc, out, _ = mg("audit", "verify", "--json")
    result = json.loads(out)
    assert rc == 1 and result["ok"] is False and result["problems"][0]["what"] == "modified"
    rc, _, err = mg("audit", "verify")
    assert rc == 1 and "verification failed" in err and "modified" in err


def test_prune(mg: Run, logged: str) -> None:
    rc, out, _ = mg("audit", "prune", "--before", "2000-01-01", "--json")
    assert rc == 0 and json.loads(out)["records"] == 0
    rc, out, _ = mg("audit", "prune", "--before", "0s")
    assert rc == 0 and "pruned" in out
    assert mg("audit", "verify")[0] == 0
    assert json.loads(mg("audit", "list", "--json")[1])["requests"] == []


def test_usage_errors_exit_2(mg: Run, home: Path, logged: str) -> None:
    rc, _, err = mg("audit", "list", "--since", "last tuesday")
    assert rc == 2 and "neither an ISO 8601 time" in err
    rc, _, err = mg("audit", "list", "--decision", "maybe")
    assert rc == 2 and "decision must be" in err
    rc, out, _ = mg("audit", "show", "999999", "--json")
    assert rc == 2 and json.loads(out)["reason"] == "no request with id 999999"
    (home / "audit.db").rename(home / "moved.db")
    rc, _, err = mg("audit", "list")
    assert rc == 2 and "no audit database" in err


def test_commands_take_a_postgresql_url(mg: Run, audit_url: str, home: Path) -> None:
    writer = AuditWriter.open(audit_url, home=home)
    fill(writer, 3)
    writer.close()
    rc, out, _ = mg("audit", "list", "--audit-db", audit_url, "--json")
    assert rc == 0 and len(json.loads(out)["requests"]) == 3
    assert mg("audit", "verify", "--audit-db", audit_url)[0] == 0


def test_agents(mg: Run) -> None:
    rc, out, _ = mg("agents", "add", "ci-bot", "--profile", "strict")
    key = out.strip().splitlines()[-1]
    assert rc == 0 and key.startswith("mgk_") and "shown only now" in out
    rc, out, _ = mg("agents", "add", "other", "--json")
    assert rc == 0 and json.loads(out)["key"].startswith("mgk_")
    rc, _, err = mg("agents", "add", "ci-bot")
    assert rc == 2 and "already exists" in err
    rc, out, _ = mg("agents", "list")
    assert rc == 0 and "ci-bot" in out and "strict" in out and key not in out and key[:12] in out
    rc, out, _ = mg("agents", "revoke", "ci-bot", "--json")
    assert rc == 0 and json.loads(out)["revoked_at"]
    listed = json.loads(mg("agents", "list", "--json")[1])["agents"]
    assert [(a["name"], a["revoked_at"] is not None) for a in listed] == [("ci-bot", True), ("other", False)]
    rc, _, err = mg("agents", "revoke", "nobody")
    assert rc == 2 and "no agent named" in err
