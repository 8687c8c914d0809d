"""``modelgate attest collect`` and ``attest verify`` with the simulated TEE: exit codes and JSON fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelgate.cli import main
from policies.loader import shipped_policy

POLICIES = Path(shipped_policy.__code__.co_filename).parent


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    rc = main(["attest", *args, "--json"])
    return rc, json.loads(capsys.readouterr().out)


def test_collect_then_verify_under_dev_and_production(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evidence = str(tmp_path / "evidence.json")
    rc, out = _run(capsys, "collect", "-o", evidence, "--tee", "simulated", "--nonce", "0a0b0c")
    assert rc == 0 and out["platforms"] == ["simulated"] and out["nonce"] == "0a0b0c"

    rc, out = _run(capsys, "verify", evidence, "--at", "now", "--nonce", "0a0b0c", "--policy",
                   str(POLICIES / "dev.yaml"))
    assert rc == 0 and out["ok"] and out["accepted"] and out["simulated"]
    assert out["report_data"] == "0a0b0c".ljust(128, "0") and out["violations"] == []

    rc, out = _run(capsys, "verify", evidence, "--at", "now", "--nonce", "0a0b0c", "--policy",
                   str(POLICIES / "production.yaml"))
    assert rc == 1 and out["authentic"] and out["fresh"] and not out["acceptable"]
    assert any("refused by policy 'production'" in v["reason"] for v in out["violations"])


def test_verify_names_what_is_not_fresh(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evidence = str(tmp_path / "evidence.json")
    _run(capsys, "collect", "-o", evidence, "--tee", "simulated", "--nonce", "0a0b0c")
    dev = str(POLICIES / "dev.yaml")
    rc, out = _run(capsys, "verify", evidence, "--at", "now", "--nonce", "ffff", "--policy", dev)
    assert rc == 1 and [v["check"] for v in out["violations"]] == ["fresh"]
    assert out["violations"][0]["reason"] == "the evidence answers nonce 0a0b0c, not ffff"
    rc, out = _run(capsys, "verify", evidence, "--at", "2999-01-01T00:00:00Z", "--policy", dev)
    assert rc == 1 and "s old; the policy accepts at most 300 s" in out["violations"][0]["reason"]


def test_unusable_input_exits_1_or_2_with_a_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk.bin").write_bytes(b"\x99" * 100)
    rc, out = _run(capsys, "verify", str(tmp_path / "junk.bin"), "--at", "now")
    assert rc == 1 and out["error"] == "EvidenceFormatError" and "not an evidence bundle" in out["reason"]
    rc, out = _run(capsys, "verify", str(tmp_path / "junk.bin"), "--at", "yesterday")
    assert rc == 2 and "not an ISO 8601 time" in out["reason"]
    rc, out = _run(capsys, "verify", str(tmp_path / "absent.json"), "--at", "now")
    assert rc == 2 and "cannot read" in out["reason"]
    rc, out = _run(capsys, "collect", "-o", str(tmp_path / "e.json"), "--tee", "simulated", "--nonce", "xyz")
    assert rc == 2 and "--nonce must be hex" in out["reason"]
