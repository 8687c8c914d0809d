"""The derived index row: one definition of "what the chain says about a request"."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.audit.index import RESPONSE_COLUMNS, clip, columns, fold_response, request_row, row_from_columns
from gateway.audit.records import request_entry, response_entry
from gateway.events import ToolCall
from gateway.findings import Finding
from tests.gateway.audit.conftest import ALERT, BLOCK, request_event, response_event

AT = datetime(2025, 1, 31, tzinfo=UTC)


def test_responses_fold_into_the_request_row() -> None:
    request = request_entry(request_event(1, tool_call=ToolCall(name="fs.read")), [ALERT], at=AT, body=b"{}")
    row = request_row(10, "inst", AT, request.data)
    assert (row["decision"], row["tool_names"], row["rule_names"]) == ("alert", ["fs.read"],
                                                                       ["detect.injection.role_marker"])
    first = response_entry(response_event(1, tool_calls=(ToolCall(name="shell"),)), [BLOCK], at=AT, latency_us=5)
    second = response_entry(response_event(1, status=502, usage=None), [], at=AT, latency_us=9)
    folded = fold_response(fold_response(row, 11, first.data), 12, second.data)
    assert (folded["decision"], folded["response_decision"], folded["status"], folded["latency_us"]) == (
        "block", "block", 502, 9)
    assert folded["tool_names"] == ["fs.read", "shell"] and folded["response_id"] == 12
    assert folded["rule_names"] == ["detect.injection.role_marker", "policy.tool_not_allowed"]
    assert folded["prompt_tokens"] is None and folded["response_body"] is None
    stored = columns(folded)
    assert stored["tools"] == "fs.read shell" and "tool_names" not in stored
    assert row_from_columns(stored, ["shell", "fs.read"], list(folded["rule_names"])) == folded


def test_indexed_text_fits_its_column() -> None:
    assert clip("a\x00b") == "a\ufffdb" and clip("x" * 300) == "x" * 256 and clip(None) is None
    long = request_entry(request_event(1, session="s" * 1000, host="h" * 300), [Finding(
        rule="r" * 400, action="alert", reason="")], at=AT)
    row = request_row(1, "inst", AT, long.data)
    assert len(row["session"]) == 256 and len(row["host"]) == 256 and row["rule_names"] == ["r" * 256]


def test_a_response_changes_only_the_columns_its_update_writes() -> None:
    request = request_entry(request_event(1, tool_call=ToolCall(name="fs.read")), [ALERT], at=AT, body=b"{}")
    before = columns(request_row(10, "inst", AT, request.data))
    response = response_entry(response_event(1, tool_calls=(ToolCall(name="shell"),)), [BLOCK], at=AT,
                              latency_us=5, body=b"answer")
    after = columns(fold_response(request_row(10, "inst", AT, request.data), 11, response.data))
    changed = {key for key in after if after[key] != before[key]}
    assert changed and changed <= set(RESPONSE_COLUMNS)
    assert {key for key in before if key not in RESPONSE_COLUMNS} == set(after) - set(RESPONSE_COLUMNS)
