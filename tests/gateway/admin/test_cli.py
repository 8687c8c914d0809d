"""``modelgate tools list|approve|reject`` through the real entry point: locally, and through a running gateway."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

import modelgate.cli
from gateway.audit.db import open_database
from gateway.audit.models import Record
from tests.gateway.admin.conftest import Admin, held_call
from tests.gateway.admin.seed import MCP_SERVER, Seeded
from tests.servers import free_port

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture()
def mg(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = modelgate.cli.main([str(a) for a in args])
        out = capsys.readouterr()
        return rc, out.out, out.err

    return run


def events(seeded: Seeded) -> list[dict]:
    db = open_database(seeded.url)
    try:
        with db.sessions() as session:
            data = map(json.loads, session.scalars(select(Record.data).where(Record.kind == "event")))
            return [d for d in data if d["event"].startswith("approval.")]
    finally:
        db.close()


def test_list_shows_the_quarantine_and_all_shows_every_pin(mg: Run, seeded: Seeded) -> None:
    rc, out, _ = mg("tools", "list", "--audit-db", seeded.url, "--json")
    (tool,) = json.loads(out)["tools"]
    assert rc == 0 and (tool["server"], tool["tool"], tool["status"]) == (MCP_SERVER, "send_email", "quarantined")
    rc, out, _ = mg("tools", "list", "--audit-db", seeded.url)
    assert rc == 0 and "quarantined" in out and "send_email" in out and "its description changed" in out
    rc, out, _ = mg("tools", "list", "--all", "--audit-db", seeded.url, "--json")
    assert sorted(t["tool"] for t in json.loads(out)["tools"]) == ["search", "send_email"]


def test_approve_with_no_gateway_running_records_it_directly(mg: Run, seeded: Seeded) -> None:
    rc, out, err = mg("tools", "approve", MCP_SERVER, "send_email", "--audit-db", seeded.url, "--home", seeded.home,
                      "--note", "ok'd in the ticket", "--json")
    assert rc == 0, err
    result = json.loads(out)
    assert result["recorded"] == "directly" and result["status"] == "pinned"
    (event,) = events(seeded)
    assert event["event"] == "approval.granted" and event["details"]["via"] == "cli"
    assert event["details"]["note"] == "ok'd in the ticket" and "@" in event["details"]["by"]


def test_a_token_but_no_listener_falls_back_to_the_database(mg: Run, admin: Admin) -> None:
    admin.server.stop()
    admin.writer.close()  # the gateway is gone; its token file stays
    rc, out, err = mg("tools", "reject", MCP_SERVER, "send_email", "--admin-url", f"http://127.0.0.1:{free_port()}",
                      "--home", admin.seeded.home, "--audit-db", admin.seeded.url)
    assert rc == 0, err
    assert "rejected send_email" in out and "recorded directly" in out


def test_with_a_gateway_running_the_decision_goes_through_it(mg: Run, admin: Admin) -> None:
    rc, out, err = mg("tools", "approve", MCP_SERVER, "send_email", "--admin-url", admin.url, "--home",
                      admin.seeded.home, "--json")
    assert rc == 0, err
    assert json.loads(out)["recorded"] == f"through {admin.url}" and admin.queue() == 0
    (event,) = events(admin.seeded)
    assert event["details"]["via"] == "api" and "(token from 127.0.0.1)" in event["details"]["by"]
    rc, out, _ = mg("tools", "approve", MCP_SERVER, "send_email", "--admin-url", admin.url, "--home",
                    admin.seeded.home, "--json")
    assert rc == 2 and json.loads(out)["reason"].endswith("is not quarantined: there is nothing to decide")


def test_a_wrong_digest_or_a_foreign_token_is_refused(mg: Run, admin: Admin, tmp_path: Path) -> None:
    rc, _, err = mg("tools", "approve", MCP_SERVER, "send_email", "--digest", "0" * 64, "--admin-url", admin.url,
                    "--home", admin.seeded.home)
    assert rc == 2 and "changed again since it was reviewed" in err
    other = tmp_path / "other-home"
    other.mkdir()
    (other / "admin-token").write_text("x" * 40)
    (other / "admin-token").chmod(0o600)
    rc, _, err = mg("tools", "approve", MCP_SERVER, "send_email", "--admin-url", admin.url, "--home", other)
    assert rc == 2 and "refused the admin token" in err
    assert admin.queue() == 1


def test_calls_list_and_a_decision_straight_to_the_database(mg: Run, admin: Admin) -> None:
    number = held_call(admin)
    rc, out, _ = mg("calls", "list", "--audit-db", admin.seeded.url)
    assert rc == 0 and "send_money" in out and "billing-bot" in out and "waits for a reviewer" in out
    rc, out, _ = mg("calls", "list", "--audit-db", admin.seeded.url, "--json")
    assert [h["id"] for h in json.loads(out)["held"]] == [number]
    rc, out, err = mg("calls", "reject", number, "--admin-url", f"http://127.0.0.1:{free_port()}", "--home",
                      admin.seeded.home, "--audit-db", admin.seeded.url, "--note", "fraud")
    assert rc == 0, err
    assert f"rejected held call {number} (send_money of billing-bot), directly" in out
    rc, out, _ = mg("calls", "approve", number, "--admin-url", admin.url, "--home", admin.seeded.home, "--json")
    assert rc == 2 and "no longer waiting: rejected by cli " in json.loads(out)["reason"]
    rc, out, _ = mg("calls", "list", "--audit-db", admin.seeded.url)
    assert rc == 0 and "no held calls" in out
