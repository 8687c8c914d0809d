"""Classification: the rules, and hostile bodies that must not slip through as opaque HTTP."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.protocols import Headers, Limits, RawRequest, classify

JSON = {"content-type": "application/json"}
CHAT = json.dumps({"model": "m", "messages": []}).encode()
CALL = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "rm"}}).encode()


def request(method: str = "POST", path: str = "/", headers: dict[str, str] | None = None,
            body: bytes = b"") -> RawRequest:
    return RawRequest(method, "https", "example.com", 443, path, Headers(headers or {}), body)


@pytest.mark.parametrize(("method", "path", "headers", "body", "protocol"), [
    ("POST", "/v1/chat/completions", JSON, CHAT, "openai.chat"),
    ("POST", "/openai/deployments/gpt4/chat/completions?api-version=2024-10-21", JSON, CHAT, "openai.chat"),
    ("POST", "/V1/Chat/Completions/", JSON, CHAT, "openai.chat"),
    ("POST", "/v1/completions", JSON, b'{"prompt": "x"}', "openai.completions"),
    ("GET", "/v1/chat/completions", {}, b"", "http"),
    ("POST", "/v1/messages", {**JSON, "anthropic-version": "2023-06-01"}, CHAT, "anthropic.messages"),
    ("POST", "/v1/messages/count_tokens", {**JSON, "anthropic-version": "2023-06-01"}, CHAT, "anthropic.messages"),
    ("POST", "/v1/messages", JSON, CHAT, "http"),
    ("POST", "/mcp", JSON, CALL, "mcp"),
    ("POST", "/anything", {}, CALL, "mcp"),
    ("POST", "/messages/?session_id=abc", JSON, CALL, "mcp"),
    ("GET", "/mcp", {"mcp-session-id": "s1", **JSON}, b"", "mcp"),
    ("DELETE", "/mcp", {"Mcp-Session-Id": "s1"}, b"", "mcp"),
    ("GET", "/sse", {"accept": "text/event-stream"}, b"", "mcp"),
    ("POST", "/rpc", JSON, b'{"jsonrpc": "2.0", "id": 1, "method": "eth_call"}', "http"),
    ("POST", "/rpc", {**JSON, "mcp-protocol-version": "2025-06-18"},
     b'{"jsonrpc": "2.0", "id": 1, "method": "tasks/get"}', "mcp"),
    ("POST", "/upload", {"content-type": "image/png"}, b"\x89PNG\r\n\x1a\n\x00\x00", "http"),
])
def test_rules(method: str, path: str, headers: dict[str, str], body: bytes, protocol: str) -> None:
    found = classify(request(method, path, headers, body))
    assert (found.protocol, found.parse_error) == (protocol, None)


@pytest.mark.parametrize(("headers", "body", "protocol", "why"), [
    # the same tools/call, hidden from a strict reader in ways a lax one still accepts
    ({}, b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "method": "tools/call"}', "mcp", "duplicate key"),
    (JSON, json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call"}).encode("utf-16"), "http", "UTF-8"),
    (JSON, json.dumps({"jsonrpc": "2.0", "method": "tools/call"}).encode("utf-16-le"), "http", "invalid JSON"),
    ({"content-type": "text/plain"}, json.dumps({"jsonrpc": "2.0", "x": 1}).encode("utf-32"), "http", "UTF-8"),
    ({}, b"\xef\xbb\xbf" + CALL, "mcp", "BOM"),
    ({}, b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"n": NaN}}', "mcp", "NaN"),
    ({}, b"[" * 100 + b"]" * 100, "http", "nested deeper"),
    ({}, b'  \n {"a": "\xff"}', "http", "not UTF-8"),
    ({"content-type": "application/vnd.api+json"}, b"nope", "http", "invalid JSON"),
])
def test_json_looking_bodies_that_fail_strict_parsing_get_parse_error(headers, body: bytes, protocol: str,
                                                                      why: str) -> None:
    found = classify(request("POST", "/x", headers, body))
    assert found.protocol == protocol and why in (found.parse_error or "")


def test_path_classified_bodies_must_parse() -> None:
    found = classify(request("POST", "/v1/chat/completions", {}, b"model=gpt-4"))
    assert found.protocol == "openai.chat" and "invalid JSON" in found.parse_error


def test_batches_are_classified_mcp_so_they_can_be_refused() -> None:
    found = classify(request("POST", "/x", JSON, b"[" + CALL + b"]"))
    assert found.protocol == "mcp" and found.parse_error is None and isinstance(found.doc, list)


def test_the_size_limit() -> None:
    limits = Limits(max_body_bytes=100)
    big = json.dumps({"model": "m", "messages": [], "pad": "x" * 200}).encode()
    found = classify(request("POST", "/v1/chat/completions", JSON, big), limits)
    assert found.protocol == "openai.chat" and "over the 100-byte limit" in found.parse_error
    assert classify(request("POST", "/upload", {"content-type": "application/zip"}, b"PK" * 100), limits).parse_error \
        is None  # an opaque body is not parsed, so its size is the policy's business


def test_plain_text_and_forms_are_http_without_error() -> None:
    for body, media in ((b"hello", "text/plain"), (b"a=1&b=2", "application/x-www-form-urlencoded"),
                        (b"[INFO] log line", "text/plain")):
        found = classify(request("POST", "/x", {"content-type": media}, body))
        assert (found.protocol, found.parse_error) == ("http", None)
    smuggled = b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "method": "tools/call"}'
    assert "duplicate" in classify(request("POST", "/x", {"content-type": "text/plain"}, smuggled)).parse_error


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["GET", "POST", "DELETE", "PUT"]),
       st.sampled_from(["/", "/v1/chat/completions", "/v1/completions", "/v1/messages", "/mcp", "/sse", "/x?y=1"]),
       st.dictionaries(st.sampled_from(["content-type", "anthropic-version", "mcp-session-id", "accept",
                                        "mcp-protocol-version"]),
                       st.sampled_from(["application/json", "text/event-stream", "x", "text/plain; charset=latin-1"]),
                       max_size=3),
       st.binary(max_size=200) | st.just(CALL) | st.just(CHAT))
def test_any_request_classifies_without_raising(method, path, headers, body) -> None:
    found = classify(request(method, path, headers, body))
    assert found.parse_error is None or found.doc is None
