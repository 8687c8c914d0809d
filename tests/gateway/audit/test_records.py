"""What a record says: wire data redacted and made storable before it reaches the database."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from engine.verified_load import LoadRecord
from gateway.audit.records import event_entry, model_load_entry, request_entry, response_entry
from gateway.events import ToolCall, ToolSpec
from gateway.findings import Finding
from tests.gateway.audit.conftest import request_event, response_event

AT = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)


def test_a_request_record_is_redacted_everywhere_and_says_so() -> None:
    finding = Finding(rule="detect.secret.api_key", action="block", reason="key sk-abcdefghijklmnopqrstuvwx sent",
                      evidence=("sk-abcdefghijklmnopqrstuvwx",), score=0.123456)
    entry = request_entry(
        request_event(1, path="/v1/chat?api_key=abcd1234", tools=(ToolSpec(name="b"), ToolSpec(name="a")),
                      tool_call=ToolCall(name="fs.read")),
        [finding], at=AT, body=b'{"password": "hunter2"}', headers=[("X-Api-Key", "k"), ("Accept", "*/*")])
    data = entry.data
    assert data["path"] == "/v1/chat?api_key=[REDACTED]"
    assert data["headers"] == [["X-Api-Key", "[REDACTED]"], ["Accept", "*/*"]]
    assert data["findings"][0]["reason"] == "key [REDACTED] sent" and data["findings"][0]["evidence"] == ["[REDACTED]"]
    assert data["findings"][0]["score"] == 0.1235
    assert data["redactions"] == {"api_key": 2, "assignment": 1, "header": 1, "json_secret": 1}
    assert data["decision"] == "block" and data["tool_call"] == "fs.read" and data["tools_offered"] == ["a", "b"]
    stored = b'{"password": "[REDACTED]"}'
    assert data["body"] == {"sha256": hashlib.sha256(stored).hexdigest(), "size": 23,
                            "stored": hashlib.sha256(stored).hexdigest(), "stored_size": len(stored),
                            "truncated": False, "redactions": 1}
    assert entry.bodies == ((hashlib.sha256(stored).hexdigest(), stored),)
    assert json.loads(entry.data_text) == data and b"hunter2" not in entry.data_text.encode()


def test_undecodable_wire_text_is_stored_as_replacement_characters() -> None:
    entry = request_event(1, host="h\udcffost", session="s\ud800")
    data = request_entry(entry, at=AT, headers=[("X-\udcfe", "v\udcfd")]).data
    assert data["host"] == "h\ufffd\ufffd\ufffdost" and data["session"].startswith("s\ufffd")
    assert data["headers"][0][0].startswith("X-\ufffd") and data["headers"][0][1].startswith("v\ufffd")


def test_no_body_is_not_an_empty_body() -> None:
    assert request_entry(request_event(1, body_size=7), at=AT).data["body"] is None
    assert request_entry(request_event(1, body_size=7), at=AT).data["body_size"] == 7
    assert request_entry(request_event(1), at=AT, body=b"").data["body"]["size"] == 0


def test_a_response_record() -> None:
    entry = response_entry(response_event(1, tool_calls=(ToolCall(name="shell"), ToolCall(name="shell")),
                                          error="upstream said token=abcdefgh"),
                           [Finding(rule="policy.tool_not_allowed", action="block", reason="shell")],
                           at=AT, latency_us=1500, session="sess-1", body=b"data: [DONE]\n\n")
    data = entry.data
    assert (data["status"], data["latency_us"], data["decision"], data["tool_calls"]) == (200, 1500, "block",
                                                                                           ["shell"])
    assert data["usage"] == {"prompt_tokens": 10, "completion_tokens": 5}
    assert data["error"] == "upstream said token=[REDACTED]" and entry.session == "sess-1"
    assert data["parse_error"] is None


def test_a_response_that_could_not_be_followed_says_why() -> None:
    event = response_event(1, parse_error="malformed stream: event 3 is not JSON")
    assert response_entry(event, at=AT, latency_us=1).data["parse_error"] == "malformed stream: event 3 is not JSON"


def test_model_loads_and_events() -> None:
    load = LoadRecord(model="smol.gguf", policy="production", decision="refused", at=AT, reason="unsigned")
    entry = model_load_entry(load.to_json(), at=AT)
    assert entry.kind == "model_load" and entry.data["decision"] == "refused"
    event = event_entry("approval.granted", at=AT, request_id="r1", session="s1", data={"by": "alice"})
    assert event.data == {"event": "approval.granted", "agent": None, "session": "s1", "request_id": "r1",
                          "details": {"by": "alice"}}
    with pytest.raises(ValueError, match="1 to 64"):
        event_entry("", at=AT)
    with pytest.raises(ValueError, match="NaN|JSON"):
        event_entry("x", at=AT, data={"v": float("nan")})
    with pytest.raises(TypeError):
        event_entry("x", at=AT, data={"v": object()})
