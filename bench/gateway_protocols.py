"""What protocol normalisation and stream guarding cost per request, on this machine's CPU.

    python bench/gateway_protocols.py [--json]

Prints the time to normalise a typical agent chat request (a 12-turn conversation with 8 tools), a
4 MB request (an inline image), and an MCP tools/call; and the throughput of the stream guard on a
long text stream and on a stream of tool calls, in MB/s of upstream bytes fed in 512-byte chunks.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from gateway.protocols import Headers, RawRequest, Verdict, guard_stream, normalise_request

JSON = Headers({"content-type": "application/json"})


def per_call(fn: Callable[[], object], seconds: float = 1.0) -> float:
    """Seconds per call, the best of three runs of about ``seconds`` each."""
    fn()
    best = float("inf")
    for _ in range(3):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 3:
            fn()
            count += 1
        best = min(best, elapsed / count)
    return best


def chat_body(turns: int, tools: int, image_bytes: int = 0) -> bytes:
    schema = {"type": "object", "properties": {f"p{i}": {"type": "string", "description": "x" * 40}
                                               for i in range(6)}, "required": ["p0"]}
    messages: list[dict[str, object]] = [{"role": "system", "content": "You are a careful coding agent. " * 20}]
    for i in range(turns):
        messages.append({"role": "user", "content": f"Step {i}: please look at file {i}.py and fix the bug. " * 5})
        messages.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": f"call_{i}", "type": "function", "function": {"name": "read_file", "arguments": '{"p0": "a.py"}'}}]})
        messages.append({"role": "tool", "tool_call_id": f"call_{i}", "content": "def f():\n    return 1\n" * 40})
    if image_bytes:
        messages.append({"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * image_bytes}}]})
    return json.dumps({"model": "gpt-4o", "stream": True, "messages": messages, "tools": [
        {"type": "function", "function": {"name": f"tool_{i}", "description": "d" * 80, "parameters": schema}}
        for i in range(tools)]}).encode()


def stream(chunks: list[str]) -> bytes:
    return "".join(f"data: {c}\n\n" for c in [*chunks, "[DONE]"]).encode()


def text_stream(events: int) -> bytes:
    return stream([json.dumps({"id": "c", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": {"content": "token "}, "finish_reason": None}]}) for _ in range(events)])


def tool_stream(calls: int, pieces: int) -> bytes:
    chunks = []
    for slot in range(calls):
        chunks.append(json.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": slot, "id": f"call_{slot}", "type": "function",
             "function": {"name": "write_file", "arguments": ""}}]}}]}))
        chunks += [json.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": slot, "function": {"arguments": '"xxxxxxxxxxxxxxxx' if i else '{"p0": '}}]}}]})
            for i in range(pieces)]
        chunks.append(json.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": slot, "function": {"arguments": '"}'}}]}}]}))
    return stream(chunks)


def guard_mb_per_s(data: bytes) -> float:
    request = normalise_request(RawRequest("POST", "https", "api", 443, "/v1/chat/completions", JSON,
                                           b'{"messages": [], "stream": true}'),
                                request_id="r", agent="a", direction="reverse")

    def run() -> None:
        guard = guard_stream(request, lambda call: Verdict("allow"))
        for i in range(0, len(data), 512):
            guard.feed(data[i:i + 512])
        guard.close()
        guard.result()

    return len(data) / per_call(run) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    def normalise(body: bytes, path: str = "/v1/chat/completions", headers: Headers = JSON) -> Callable[[], object]:
        raw = RawRequest("POST", "https", "api.openai.com", 443, path, headers, body)
        return lambda: normalise_request(raw, request_id="r", agent="a", direction="reverse")

    typical, large = chat_body(12, 8), chat_body(2, 2, image_bytes=4 * 2**20)
    call = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                       "params": {"name": "read_file", "arguments": {"path": "/etc/hosts"}}}).encode()
    mcp_headers = Headers({"content-type": "application/json", "mcp-protocol-version": "2025-06-18",
                           "mcp-session-id": "0123456789abcdef"})
    text, tools = text_stream(20_000), tool_stream(20, 500)
    figures = {
        "chat_request_kb": round(len(typical) / 1024, 1),
        "chat_request_us": round(per_call(normalise(typical)) * 1e6),
        "large_request_mb": round(len(large) / 2**20, 1),
        "large_request_ms": round(per_call(normalise(large)) * 1e3, 1),
        "mcp_call_us": round(per_call(normalise(call, "/mcp", mcp_headers)) * 1e6),
        "guard_text_mb_s": round(guard_mb_per_s(text), 1),
        "guard_tool_calls_mb_s": round(guard_mb_per_s(tools), 1),
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"chat request ({figures['chat_request_kb']} KB, 37 messages, 8 tools): {figures['chat_request_us']} us")
    print(f"large request ({figures['large_request_mb']} MB inline image): {figures['large_request_ms']} ms")
    print(f"MCP tools/call request: {figures['mcp_call_us']} us")
    print(f"stream guard, text deltas: {figures['guard_text_mb_s']} MB/s")
    print(f"stream guard, tool call deltas (held and checked): {figures['guard_tool_calls_mb_s']} MB/s")


if __name__ == "__main__":
    main()
