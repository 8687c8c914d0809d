"""Anthropic streams through the guard: tool_use blocks held to content_block_stop, the SDK agrees."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.events import ToolCall
from gateway.protocols import Limits, Verdict, guard_stream
from gateway.protocols.stream_guard import StreamGuard
from tests.gateway.protocols.recorder import Recorder, Reply
from tests.gateway.protocols.streams import anthropic_events, anthropic_request_event, anthropic_tool_stream, sse

ALLOW = Verdict("allow")
START = {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [],
                                              "model": "claude", "stop_reason": None, "stop_sequence": None,
                                              "usage": {"input_tokens": 10, "output_tokens": 1}}}


def guard(check=lambda call: ALLOW, **limits: int) -> StreamGuard:
    return guard_stream(anthropic_request_event(), check, limits=Limits(**limits))


def run(g: StreamGuard, data: bytes, cuts: list[int] | None = None) -> bytes:
    bounds = [0, *sorted(set(cuts or [])), len(data)]
    return b"".join(g.feed(data[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)) + g.close()


def no_shell(call: ToolCall) -> Verdict:
    return Verdict("block", "shell is not allowed") if call.name == "run_shell" else ALLOW


def tool_block(index: int, name: str, *pieces: str) -> list[dict[str, Any]]:
    return [{"type": "content_block_start", "index": index,
             "content_block": {"type": "tool_use", "id": f"toolu_{index}", "name": name, "input": {}}},
            *({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": p}}
              for p in pieces),
            {"type": "content_block_stop", "index": index}]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_allowed_stream_passes_unchanged_at_every_split(newline: str) -> None:
    data = anthropic_tool_stream(newline)
    for cut in range(0, len(data) + 1):
        assert run(guard(), data, [cut]) == data


def test_blocked_tool_use_never_appears_and_the_output_is_the_same_at_every_split() -> None:
    data = anthropic_tool_stream()
    whole = run(guard(no_shell), data)
    for cut in range(len(data) + 1):
        assert run(guard(no_shell), data, [cut]) == whole
    assert b"toolu_shell" not in whole and b"id_rsa" not in whole
    assert b"toolu_weather" in whole and b"message_stop" not in whole
    *_, last = [e for e in whole.split(b"\n\n") if e]
    assert last.startswith(b"event: error\ndata: ")
    assert json.loads(last.split(b"data: ", 1)[1])["error"]["type"] == "permission_error"


def test_result_reassembles_text_calls_usage_and_stop_reason() -> None:
    g = guard(lambda call: Verdict("alert", "shell") if call.name == "run_shell" else ALLOW)
    run(g, anthropic_tool_stream())
    response = g.result().response
    assert response.text == "Okay, let me check."
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        ("toolu_weather", "get_weather", {"location": "San Francisco"}),
        ("toolu_shell", "run_shell", {"cmd": "cat ~/.ssh/id_rsa"})]
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (572, 89)
    assert response.finish_reason == "tool_use"
    assert [(c.call.name, c.outcome) for c in g.result().checks] == [("get_weather", "allow"), ("run_shell", "alert")]


def test_input_comes_from_the_start_block_when_no_pieces_follow() -> None:
    events = [START, {"type": "content_block_start", "index": 0, "content_block": {
        "type": "tool_use", "id": "t", "name": "get_time", "input": {"tz": "UTC"}}},
              {"type": "content_block_stop", "index": 0}, {"type": "message_stop"}]
    g = guard()
    run(g, anthropic_events(events))
    assert g.result().checks[0].call.arguments == {"tz": "UTC"}


def test_server_tool_use_is_checked_too() -> None:
    events = [START, {"type": "content_block_start", "index": 0, "content_block": {
        "type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}},
              {"type": "content_block_delta", "index": 0,
               "delta": {"type": "input_json_delta", "partial_json": '{"query": "x"}'}},
              {"type": "content_block_stop", "index": 0}, {"type": "message_stop"}]
    g = guard(lambda call: Verdict("block", "no search"))
    assert b"srvtoolu_1" not in run(g, anthropic_events(events))


def test_stream_ending_with_an_open_block_never_releases_it() -> None:
    events = [START, *tool_block(0, "run_shell", '{"cmd": "ls"}')[:-1], {"type": "message_stop"}]
    g = guard()
    out = run(g, anthropic_events(events))
    assert b'"name": "run_shell"' not in out and b"event: error" in out
    assert [c.outcome for c in g.result().checks] == ["unchecked"]


@pytest.mark.parametrize(("events", "why"), [
    ([{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}],
     "before message_start"),
    ([START, START], "second message_start"),
    ([START, *tool_block(1, "f", "{}")], "not the next block"),
    ([START, *tool_block(0, "f", "{}"), {"type": "content_block_delta", "index": 0,
                                          "delta": {"type": "input_json_delta", "partial_json": "x"}}],
     "not an open content block"),
    ([START, {"type": "message_stop"}, *tool_block(0, "f", "{}")], "after message_stop"),
    ([{**START, "message": {**START["message"], "content": [{"type": "text", "text": "x"}]}}], "carries content"),
])
def test_a_stream_the_guard_cannot_follow_stops_with_an_error(events: list[dict[str, Any]], why: str) -> None:
    g = guard()
    run(g, anthropic_events(events))
    assert why in (g.result().error or "")


def test_event_name_and_data_type_must_agree() -> None:
    body = json.dumps(tool_block(0, "run_shell")[0])
    g = guard()
    out = run(g, sse([json.dumps(START), body], events=["message_start", "ping"]))
    assert b'"name": "run_shell"' not in out and "carries data of type" in (g.result().error or "")


def test_unnamed_events_are_read_by_their_type() -> None:
    g = guard(no_shell)
    data = sse([json.dumps(e) for e in [START, *tool_block(0, "run_shell", "{}")]])
    assert b'"name": "run_shell"' not in run(g, data)


def test_upstream_error_event_passes_and_is_recorded() -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    data = anthropic_events([START, error])
    g = guard()
    assert run(g, data) == data
    assert g.result().response.error.startswith("Overloaded")


# --- the anthropic SDK reads what the guard lets through ------------------------------------------------------


def client_for(data: bytes, check) -> tuple[anthropic.Anthropic, Recorder, StreamGuard]:
    g = guard(check)
    out = [g.feed(data[i:i + 11]) for i in range(0, len(data), 11)] + [g.close()]
    recorder = Recorder()
    recorder.replies.append(Reply(headers={"content-type": "text/event-stream"}, chunks=out))
    return anthropic.Anthropic(base_url=recorder.url, api_key="sk-ant-test", max_retries=0), recorder, g


def test_sdk_assembles_the_allowed_stream_as_the_guard_did() -> None:
    client, recorder, g = client_for(anthropic_tool_stream(), lambda call: ALLOW)
    with recorder, client.messages.stream(model="claude", max_tokens=100,
                                          messages=[{"role": "user", "content": "x"}]) as s:
        final = s.get_final_message()
    response = g.result().response
    assert "".join(b.text for b in final.content if b.type == "text") == response.text
    assert [(b.id, b.name, b.input) for b in final.content if b.type == "tool_use"] == [
        (c.id, c.name, c.arguments) for c in response.tool_calls]
    assert final.usage.output_tokens == response.usage.completion_tokens


def test_sdk_raises_the_guards_error_for_a_blocked_call() -> None:
    client, recorder, _ = client_for(anthropic_tool_stream(), no_shell)
    names = []
    with recorder, pytest.raises(anthropic.APIStatusError, match="shell is not allowed") as raised:
        for event in client.messages.create(model="claude", max_tokens=100, stream=True,
                                            messages=[{"role": "user", "content": "x"}]):
            if event.type == "content_block_start" and event.content_block.type == "tool_use":
                names.append(event.content_block.name)
    assert names == ["get_weather"]
    assert raised.value.body["error"]["type"] == "permission_error"  # in-stream: the status is already 200


# --- random streams ------------------------------------------------------------------------------------------

_piece = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6)


@st.composite
def json_pieces(draw: st.DrawFn) -> list[str]:
    """A JSON object's text cut into pieces, as input_json_delta delivers it (the SDK parses every prefix)."""
    text = json.dumps(draw(st.dictionaries(st.text(max_size=4), st.text(max_size=6) | st.integers(), max_size=3)))
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=4))))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)] if draw(st.booleans()) else []


@st.composite
def message_streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    events = [START]
    for index in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            events += [{"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
                       *({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": t}}
                         for t in draw(st.lists(_piece, max_size=3))),
                       {"type": "content_block_stop", "index": index}]
        else:
            events += tool_block(index, draw(st.sampled_from("fgh")), *draw(json_pieces()))
        if draw(st.booleans()):
            events.append({"type": "ping"})
    return [*events, {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}},
            {"type": "message_stop"}]


@settings(max_examples=150, deadline=None)
@given(message_streams(), st.lists(st.integers(0, 3000), max_size=8), st.sampled_from(["\n", "\r\n", "\r"]))
def test_random_streams_pass_unchanged_and_match_the_sdk(events: list[dict[str, Any]], cuts: list[int],
                                                         newline: str) -> None:
    data = anthropic_events(events, newline=newline)
    g = guard()
    assert run(g, data, [c for c in cuts if c < len(data)]) == data
    snapshot = None
    for event in events:
        if event["type"] != "ping":
            snapshot = accumulate_event(event=event, current_snapshot=snapshot)
    texts = "".join(b.text for b in snapshot.content if b.type == "text")
    response = g.result().response
    assert texts == response.text
    sdk_calls = [(b.id, b.name, b.input) for b in snapshot.content if b.type == "tool_use"]
    assert sdk_calls == [(c.id, c.name, c.arguments) for c in response.tool_calls]


@settings(max_examples=150, deadline=None)
@given(message_streams(), st.lists(st.integers(0, 3000), max_size=8))
def test_random_streams_blocked_blocks_never_leak(events: list[dict[str, Any]], cuts: list[int]) -> None:
    data = anthropic_events(events)
    g = guard(lambda call: Verdict("block", "no") if call.name == "h" else ALLOW)
    out = run(g, data, [c for c in cuts if c < len(data)])
    for check in g.result().checks:
        if check.outcome == "block":
            assert f'"id": "{check.call.id}"'.encode() not in out


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=5))
def test_arbitrary_bytes_never_crash_the_guard(data: bytes, cuts: list[int]) -> None:
    g = guard()
    run(g, b"event: message_start\n" + data, [c for c in cuts if c < len(data)])
    g.result()


_leaf = st.none() | st.booleans() | st.integers(-2, 3) | st.sampled_from(["", "x", "{}", "run_shell"])
_index = st.integers(-1, 3) | _leaf
_block = st.fixed_dictionaries({"type": st.sampled_from(["text", "tool_use", "server_tool_use", "thinking"]) | _leaf},
                               optional={"id": _leaf, "name": _leaf, "input": _leaf | st.just({}), "text": _leaf})
_delta = st.fixed_dictionaries({"type": st.sampled_from(["text_delta", "input_json_delta", "thinking_delta"]) | _leaf},
                               optional={"text": _leaf, "partial_json": _leaf})
_fields = st.fixed_dictionaries(
    {"type": st.sampled_from(["content_block_start", "content_block_delta", "content_block_stop", "message_delta",
                              "message_stop", "ping", "error", "message_start"]) | _leaf},
    optional={"index": _index, "content_block": _block | _leaf, "delta": _delta | _leaf, "usage": _leaf,
              "message": _leaf})


@settings(max_examples=400, deadline=None)
@given(st.lists(_fields, max_size=8))
def test_arbitrary_event_documents_never_crash_the_guard(events: list) -> None:
    g = guard()
    data = sse([json.dumps(START), *map(json.dumps, events)])
    run(g, data)
    g.result()
