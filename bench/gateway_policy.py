"""What policy enforcement costs per request, and that the rate limiter stays O(1) as reservations pile up.

    PYTHONPATH=. python bench/gateway_policy.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.enforce import check_request, check_response, check_tool_call
from gateway.events import Message, RequestEvent, ResponseEvent, ToolCall, ToolSpec, Usage
from gateway.ratelimit import RateLimiter
from policies.gateway import GatewayProfile

N = 20_000

PROFILE = GatewayProfile.model_validate(
    {
        "name": "bench",
        "models": ["smollm2*", "gpt-4o*"],
        "hosts": ["*.example.com", "api.openai.com", "10.0.0.0/8:5432"] + [f"svc{i}.example.org" for i in range(50)],
        "tools": [{"name": "weather", "arguments": {"type": "object", "required": ["city"]}}]
        + [{"name": f"t{i}"} for i in range(50)],
        "rate": {"requests_per_minute": 10**9, "tokens_per_minute": 10**12},
    }
)
CALL = ToolCall(name="weather", arguments={"city": "Oslo"}, arguments_raw='{"city": "Oslo"}')


def chat(i: int) -> RequestEvent:
    return RequestEvent(
        request_id=f"r{i}", agent=f"a{i % 100}", session="s", protocol="openai.chat", direction="reverse",
        method="POST", scheme="https", host="gw", port=443, path="/v1/chat/completions", model="smollm2-135m",
        max_tokens=256, messages=(Message(role="user", text="hi"),), tools=(ToolSpec(name="weather"),),
    )  # fmt: skip


def per_call_us(fn: Callable[[int], object], n: int = N) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    limiter = RateLimiter()
    requests = [chat(i) for i in range(N)]
    responses = [
        ResponseEvent(request_id=r.request_id, protocol="openai.chat", status=200, tool_calls=(CALL,),
                      usage=Usage(prompt_tokens=10, completion_tokens=20))
        for r in requests
    ]  # fmt: skip

    def pair(i: int) -> None:
        check_request(requests[i], PROFILE, limiter)
        check_response(responses[i], requests[i], PROFILE, limiter)

    outbound = requests[0].model_copy(update={"protocol": "http", "direction": "forward", "host": "api.Example.com."})
    print(f"chat request + response with one tool call: {per_call_us(pair):.1f} us")
    us = per_call_us(lambda i: check_request(outbound, PROFILE, limiter))
    print(f"outbound request, host glob among 53 entries: {us:.1f} us")
    print(f"tool call against a schema: {per_call_us(lambda i: check_tool_call(CALL, PROFILE)):.1f} us")
    for outstanding in (10**4, 10**5, 10**6):
        fresh = RateLimiter()
        us = per_call_us(lambda i, r=fresh: r.admit("a", f"x{i}", PROFILE.rate, 10), outstanding)
        print(f"admit with up to {outstanding:>7} unsettled reservations: {us:.2f} us")


if __name__ == "__main__":
    main()
