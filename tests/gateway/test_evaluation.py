"""``modelgate eval`` on the small AgentDojo fixture: the replay goes through the real addons and the counts
add up; the rates themselves are measured on the full corpora (README), not asserted here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.evaluation.datasets import load
from modelgate.cli import main
from tests.conftest import shared_path

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "agentdojo" / "traces.jsonl.gz"


def test_agentdojo_traces_replay_through_the_gateway(capsys: pytest.CaptureFixture[str]) -> None:
    traces = list(load(FIXTURE, "agentdojo"))
    assert main(["eval", str(FIXTURE), "--format", "agentdojo", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    tool_messages = sum(m["role"] == "tool" for t in traces for m in t.messages)
    outputs = scores["injected_outputs"]["total"] + scores["clean_outputs"]["total"]
    assert 0 < outputs <= tool_messages
    attacked_with_call = sum(t.is_attack and any((m.get("label") or {}).get("malicious") for m in t.messages)
                             for t in traces)
    assert scores["stopped"]["total"] == attacked_with_call
    assert scores["benign_traces_blocked"]["total"] == sum(not t.is_attack for t in traces)
    assert scores["stopped"]["rate"] >= 0.9 and scores["clean_outputs"]["flagged"] == 0  # a detector that works


def test_asb_tool_descriptions_are_judged_one_per_request(capsys: pytest.CaptureFixture[str]) -> None:
    folder = shared_path("datasets", "agent", "asb")
    assert main(["eval", str(folder), "--format", "asb", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert (scores["attacker_tools"]["total"], scores["normal_tools"]["total"]) == (400, 20)
    assert scores["normal_tools"]["flagged"] <= 1


def test_an_unknown_format_or_folder_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(tmp_path), "--format", "nope", "--json"]) == 2
    assert main(["eval", str(tmp_path / "missing"), "--format", "bipia", "--json"]) == 2
    assert "cannot read bipia data" in capsys.readouterr().out
