import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.enforce import check_connection, check_request, check_response, check_tool_call
from gateway.events import Message, RequestEvent, ResponseEvent, ToolCall, ToolSpec, Usage
from gateway.findings import Finding, decide
from gateway.ratelimit import RateLimiter
from policies import Policy, shipped_policy
from policies.gateway import GatewayProfile, RuleActions

ACTIONS = ("allow", "alert", "block")
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 20}, "days": {"type": "integer", "minimum": 1}},
    "required": ["city"],
    "additionalProperties": False,
}


def profile(**fields: Any) -> GatewayProfile:
    return GatewayProfile.model_validate({"name": "p", **fields})


def chat(**fields: Any) -> RequestEvent:
    base: dict[str, Any] = dict(
        request_id="r1", agent="a", session="s", protocol="openai.chat", direction="reverse", method="POST",
        scheme="https", host="gateway", port=443, path="/v1/chat/completions", model="smollm2", body_size=100,
    )  # fmt: skip
    return RequestEvent(**(base | fields))


def outbound(host: str, port: int = 443, **fields: Any) -> RequestEvent:
    return chat(**({"protocol": "http", "direction": "forward", "host": host, "port": port, "path": "/", "model": None}
                   | fields))


def call(name: str, arguments: Any = None, raw: str | None = None) -> ToolCall:
    if raw is None:
        return ToolCall(name=name, arguments=arguments, arguments_raw=json.dumps(arguments))
    return ToolCall(name=name, arguments_raw=raw, valid_json=False)


def rules(findings: tuple[Finding, ...]) -> list[str]:
    return [f.rule for f in findings]


# Each rule: a profile, and how to provoke a violation of it under that profile.
Provoke = Callable[[GatewayProfile, RateLimiter], tuple[Finding, ...]]
VIOLATIONS: dict[str, tuple[dict[str, Any], Provoke]] = {
    "request_too_large": ({"models": ["*"], "max_request_bytes": 99}, lambda p, rl: check_request(chat(), p, rl)),
    "unparsable_request": ({"models": ["*"]}, lambda p, rl: check_request(chat(parse_error="bad JSON"), p, rl)),
    "host_not_allowed": ({"hosts": ["*.example.com"]}, lambda p, rl: check_request(outbound("example.org"), p, rl)),
    "model_not_allowed": ({"models": ["gpt-*"]}, lambda p, rl: check_request(chat(), p, rl)),
    "tool_not_allowed": ({"tools": [{"name": "a"}]}, lambda p, rl: check_tool_call(call("b", {}), p)),
    "tool_arguments_invalid": (
        {"tools": [{"name": "w", "arguments": WEATHER}]},
        lambda p, rl: check_tool_call(call("w", {"city": 1}), p),
    ),
    "tool_held": ({"tools": [{"name": "pay", "hold": True}]}, lambda p, rl: check_tool_call(call("pay", {}), p)),
    "tool_offer_not_allowed": (
        {"models": ["*"], "tools": [{"name": "a"}]},
        lambda p, rl: check_request(chat(tools=(ToolSpec(name="b"),)), p, rl),
    ),
    "rate_limited": (
        {"models": ["*"], "rate": {"requests_per_minute": 1}},
        lambda p, rl: (check_request(chat(request_id="r0"), p, rl), check_request(chat(), p, rl))[1],
    ),
    "response_too_large": (
        {"models": ["*"], "max_response_bytes": 10},
        lambda p, rl: check_response(ResponseEvent(request_id="r1", protocol="openai.chat", status=200, body_size=11),
                                     chat(), p, rl),
    ),  # fmt: skip
}


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("rule", sorted(VIOLATIONS))
def test_every_rule_reports_with_the_profiles_action(rule: str, action: str) -> None:
    fields, provoke = VIOLATIONS[rule]
    findings = provoke(profile(**fields, actions={rule: action}), RateLimiter())
    assert rules(findings) == [f"policy.{rule}"]
    assert findings[0].action == action and decide(findings) == action
    assert findings[0].source == "policy" and not findings[0].error and findings[0].reason


def test_every_rule_has_an_action_and_a_violation_test() -> None:
    assert set(RuleActions.model_fields) == set(VIOLATIONS)


@pytest.mark.parametrize("rule", ["tool_not_allowed", "tool_arguments_invalid", "tool_held"])
def test_the_rules_that_judge_a_tool_call_can_hold_it(rule: str) -> None:
    fields, provoke = VIOLATIONS[rule]
    findings = provoke(profile(**fields, actions={rule: "hold"}), RateLimiter())
    assert rules(findings) == [f"policy.{rule}"] and decide(findings) == "hold"


def test_a_held_tool_is_held_only_when_its_call_is_otherwise_valid() -> None:
    p = profile(tools=[{"name": "w", "arguments": WEATHER, "hold": True}])
    held = check_tool_call(call("w", {"city": "Paris"}), p)
    assert rules(held) == ["policy.tool_held"] and held[0].evidence == ('{"city": "Paris"}',)
    assert "waits for a reviewer" in held[0].reason and held[0].severity == "medium"
    invalid = check_tool_call(call("w", {"city": 1}), p)
    assert rules(invalid) == ["policy.tool_arguments_invalid"] and decide(invalid) == "block"
    assert check_tool_call(call("w", {"city": "Paris"}), profile(tools=[{"name": "w"}])) == ()


def test_a_policy_without_a_gateway_section_refuses_everything() -> None:
    p, limiter = Policy().gateway.profile_for("anyone"), RateLimiter()
    assert decide(check_request(chat(), p, limiter)) == "block"
    assert decide(check_request(outbound("example.com"), p, limiter)) == "block"
    assert decide(check_tool_call(call("read_file", {}), p)) == "block"


def test_production_refuses_until_things_are_listed_and_dev_is_usable() -> None:
    prod, dev, limiter = shipped_policy("production"), shipped_policy("dev"), RateLimiter()
    assert decide(check_request(chat(), prod.gateway.profile_for("a"), limiter)) == "block"
    assert decide(check_request(outbound("api.github.com"), prod.gateway.profile_for("a"), limiter)) == "block"
    d = dev.gateway.profile_for("a")
    assert check_request(chat(tools=(ToolSpec(name="shell"),)), d, limiter) == ()
    assert check_request(outbound("api.github.com", 80), d, limiter) == ()
    assert check_request(outbound("localhost", 8931, protocol="mcp"), d, limiter) == ()
    assert check_request(outbound("10.1.2.3", 5432), d, limiter) == ()
    assert check_tool_call(call("shell", {"cmd": "ls"}), d) == ()
    for metadata in ("169.254.169.254", "metadata.google.internal", "[fd00:ec2::254]", "100.100.100.200"):
        assert decide(check_request(outbound(metadata, 80), d, limiter)) == "block", metadata
    assert decide(check_tool_call(call("shell", raw="{not json"), d)) == "alert"


def test_models() -> None:
    p, limiter = profile(models=["smollm2*", "gpt-4o"]), RateLimiter()
    assert check_request(chat(model="smollm2-135m"), p, limiter) == ()
    assert check_request(chat(model="gpt-4o"), p, limiter) == ()
    assert rules(check_request(chat(model="gpt-4o-mini"), p, limiter)) == ["policy.model_not_allowed"]
    assert rules(check_request(chat(model="GPT-4O"), p, limiter)) == ["policy.model_not_allowed"]
    none = check_request(chat(model=None), p, limiter)
    assert rules(none) == ["policy.model_not_allowed"] and "names no model" in none[0].reason
    assert check_request(outbound("x.example.com", model=None), profile(hosts=["*"]), limiter) == ()


def test_an_unparsable_request_is_not_also_judged_on_its_model() -> None:
    found = check_request(chat(model=None, parse_error="invalid UTF-8"), profile(), RateLimiter())
    assert rules(found) == ["policy.unparsable_request"] and "invalid UTF-8" in found[0].reason


def test_hosts_are_judged_on_outbound_calls_only() -> None:
    p, limiter = profile(models=["*"], hosts=["api.example.com"]), RateLimiter()
    assert check_request(chat(host="169.254.169.254"), p, limiter) == ()  # the reverse proxy's own upstream
    assert check_request(outbound("api.example.com"), p, limiter) == ()
    found = check_request(outbound("api.example.com", 8443), p, limiter)
    assert rules(found) == ["policy.host_not_allowed"] and found[0].evidence == ("api.example.com:8443",)
    assert found[0].severity == "high"


def test_resolved_addresses_are_checked_at_connection_time() -> None:
    p = profile(hosts=["*.example.com"])
    assert check_connection("api.example.com", 443, "93.184.215.14", p) == ()
    found = check_connection("api.example.com", 443, "169.254.169.254", p)
    assert rules(found) == ["policy.host_not_allowed"] and found[0].action == "block"


def test_tools_exact_names_take_precedence_over_globs() -> None:
    p = profile(tools=[{"name": "*"}, {"name": "weather", "arguments": WEATHER}])
    assert check_tool_call(call("anything", {"x": 1}), p) == ()
    assert check_tool_call(call("weather", {"city": "Oslo", "days": 3}), p) == ()
    assert rules(check_tool_call(call("weather", {"city": "Oslo", "extra": 1}), p)) == ["policy.tool_arguments_invalid"]


def test_schema_violations_name_the_path() -> None:
    p = profile(tools=[{"name": "weather", "arguments": WEATHER}])
    found = check_tool_call(call("weather", {"city": "x" * 30, "days": 0}), p)
    assert rules(found) == ["policy.tool_arguments_invalid"]
    assert sorted(e.split(":")[0] for e in found[0].evidence) == ["city", "days"]
    missing = check_tool_call(call("weather", {}), p)
    assert missing[0].evidence == ("(root): 'city' is a required property",)


def test_formats_are_asserted() -> None:
    schema = {"type": "object", "properties": {"ip": {"type": "string", "format": "ipv4"}}}
    p = profile(tools=[{"name": "ping", "arguments": schema}])
    assert check_tool_call(call("ping", {"ip": "192.0.2.1"}), p) == ()
    assert rules(check_tool_call(call("ping", {"ip": "192.0.2.1; rm -rf /"}), p)) == ["policy.tool_arguments_invalid"]


def test_unparsable_arguments_are_a_finding_even_without_a_schema() -> None:
    found = check_tool_call(call("t", raw='{"a": '), profile(tools=[{"name": "t"}]))
    assert rules(found) == ["policy.tool_arguments_invalid"] and "not valid JSON" in found[0].reason
    assert found[0].evidence == ('{"a": ',)


def test_a_schema_that_fails_at_run_time_is_an_error_finding() -> None:
    schema = {"$ref": "#/$defs/missing"}  # a well-formed schema whose reference resolves to nothing
    found = check_tool_call(call("t", {}), profile(tools=[{"name": "t", "arguments": schema}]))
    assert rules(found) == ["policy.tool_arguments_invalid"] and found[0].error and found[0].action == "block"


def test_mcp_tool_calls_in_requests_and_tool_calls_in_responses() -> None:
    p, limiter = profile(hosts=["mcp.example.com"], tools=[{"name": "search"}]), RateLimiter()
    mcp = outbound("mcp.example.com", protocol="mcp", mcp_method="tools/call", tool_call=call("exec", {}))
    assert rules(check_request(mcp, p, limiter)) == ["policy.tool_not_allowed"]
    response = ResponseEvent(
        request_id="r1", protocol="openai.chat", status=200, tool_calls=(call("search", {}), call("exec", {}))
    )
    found = check_response(response, chat(), p, limiter)
    assert rules(found) == ["policy.tool_not_allowed"] and found[0].evidence == ("exec",)


def test_offered_tools_are_listed_once_each() -> None:
    p, limiter = profile(tools=[{"name": "search"}]), RateLimiter()
    listing = ResponseEvent(
        request_id="r1", protocol="mcp", status=200,
        tools=(ToolSpec(name="search"), ToolSpec(name="exec"), ToolSpec(name="exec"), ToolSpec(name="rm")),
    )  # fmt: skip
    found = check_response(listing, outbound("mcp.example.com", protocol="mcp"), p, limiter)
    assert rules(found) == ["policy.tool_offer_not_allowed"] and found[0].evidence == ("exec", "rm")
    assert found[0].action == "alert" and found[0].severity == "low"


def test_evidence_and_reasons_are_bounded() -> None:
    found = check_request(chat(model="m" * 100_000), profile(), RateLimiter())
    assert len(found[0].reason) <= 500 and len(found[0].evidence[0]) <= 200


def test_a_blocked_request_spends_no_budget() -> None:
    p, limiter = profile(models=["ok"], rate={"requests_per_minute": 1}), RateLimiter()
    for i in range(5):
        assert rules(check_request(chat(request_id=f"b{i}", model="no"), p, limiter)) == ["policy.model_not_allowed"]
    assert check_request(chat(request_id="ok1", model="ok"), p, limiter) == ()
    found = check_request(chat(request_id="ok2", model="ok"), p, limiter)
    assert rules(found) == ["policy.rate_limited"] and found[0].evidence == ("retry_after_s=60",)


def test_in_alert_mode_the_buckets_behave_as_if_blocking() -> None:
    p = profile(models=["*"], rate={"requests_per_minute": 3}, actions={"rate_limited": "alert"})
    limiter = RateLimiter(clock=lambda: 0.0)
    outcomes = [decide(check_request(chat(request_id=f"r{i}"), p, limiter)) for i in range(6)]
    assert outcomes == ["allow"] * 3 + ["alert"] * 3


def tokens_profile() -> GatewayProfile:
    return profile(models=["*"], rate={"tokens_per_minute": 1000})


def test_tokens_are_settled_from_usage() -> None:
    p, limiter = tokens_profile(), RateLimiter(clock=lambda: 0.0)
    first = chat(request_id="r1", max_tokens=800)
    assert check_request(first, p, limiter) == ()
    assert rules(check_request(chat(request_id="r2", max_tokens=800), p, limiter)) == ["policy.rate_limited"]
    done = ResponseEvent(request_id="r1", protocol="openai.chat", status=200, usage=Usage(prompt_tokens=50,
                         completion_tokens=50))  # fmt: skip
    check_response(done, first, p, limiter)
    assert check_request(chat(request_id="r2", max_tokens=800), p, limiter) == ()


def test_a_response_without_usage_is_charged_at_least_an_estimate() -> None:
    p, limiter = tokens_profile(), RateLimiter(clock=lambda: 0.0)
    request = chat(request_id="r1", messages=(Message(role="user", text="x" * 2000),))  # no max_tokens
    assert check_request(request, p, limiter) == ()
    answer = ResponseEvent(request_id="r1", protocol="openai.chat", status=200, text="y" * 1200)
    check_response(answer, request, p, limiter)  # ~800 tokens
    assert rules(check_request(chat(request_id="r2", max_tokens=300), p, limiter)) == ["policy.rate_limited"]
    assert check_request(chat(request_id="r3", max_tokens=200), p, limiter) == ()


def test_an_error_response_without_usage_is_charged_nothing() -> None:
    p, limiter = tokens_profile(), RateLimiter(clock=lambda: 0.0)
    request = chat(request_id="r1", max_tokens=1000)
    assert check_request(request, p, limiter) == ()
    check_response(ResponseEvent(request_id="r1", protocol="openai.chat", status=503), request, p, limiter)
    assert check_request(chat(request_id="r2", max_tokens=1000), p, limiter) == ()


def test_max_tokens_beyond_a_full_bucket_says_it_can_never_pass() -> None:
    found = check_request(chat(max_tokens=5000), tokens_profile(), RateLimiter())
    assert rules(found) == ["policy.rate_limited"] and found[0].evidence == () and "5000" in found[0].reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_any_arguments_give_a_verdict_never_an_exception(arguments: Any) -> None:
    p = profile(tools=[{"name": "weather", "arguments": WEATHER}])
    found = check_tool_call(call("weather", arguments), p)
    assert rules(found) in ([], ["policy.tool_arguments_invalid"])
    valid = isinstance(arguments, dict) and set(arguments) <= {"city", "days"} and "city" in arguments
    if not valid:
        assert found and not found[0].error
