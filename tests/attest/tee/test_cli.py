"""``modelgate attest collect`` and ``attest verify`` with the simulated TEE: exit codes and JSON fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelgate.cli import main
from policies.loader import shipped_policy_path
from tests.conftest import shared_path

POLICIES = shipped_policy_path("dev").parent


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


def _snp(*parts: str) -> str:
    return str(shared_path("vectors", "tee", "sev-snp", *parts))


def test_the_real_milan_report_is_authentic_and_refused_only_for_debug(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = _run(capsys, "verify", _snp("go-sev-guest", "attestation.bin"), "--cert",
                   _snp("go-sev-guest", "vcek.testcer"), "--at", "2023-01-01T00:00:00Z", "--nonce", "0102030405")
    assert rc == 1 and out["format"] == "sev-snp-report-v2" and out["platform"] == "sev-snp"
    assert out["authentic"] and out["fresh"] and out["debug"] and not out["acceptable"]
    assert [v["reason"] for v in out["violations"]] == [
        "sev-snp: the guest is debuggable (the host can read its memory) and policy 'default' forbids debug"]


def test_the_trustee_report_is_accepted_for_its_report_data(capsys: pytest.CaptureFixture[str]) -> None:
    report = _snp("trustee", "test-report.bin")
    report_data = Path(report).read_bytes()[0x50:0x90].hex()
    args = ["verify", report, "--cert", _snp("trustee", "test-vcek.der"), "--at", "2024-01-01T00:00:00Z"]
    rc, out = _run(capsys, *args, "--nonce", report_data)
    assert rc == 0 and out["accepted"] and out["tcb"]["reported"]["snp"] == 8 and not out["debug"]
    rc, out = _run(capsys, *args[:-2], "--at", "2031-01-01T00:00:00Z", "--nonce", report_data)
    assert rc == 1 and out["authentic"] and not out["fresh"]
    assert any("expired" in v["reason"] for v in out["violations"])
