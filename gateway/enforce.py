"""The policy rules of a gateway profile, applied to normalised events: pure functions that return findings.

Each rule reports under a stable id with the action its profile gives it (``RuleActions``); the caller
combines them with the detectors' findings through ``findings.decide``. A rule that cannot be evaluated
(a schema that fails at run time) reports a finding with ``error`` set, never silence.

=================================  ========  ==========================================================
rule                               severity  raised when
=================================  ========  ==========================================================
``policy.request_too_large``       medium    the request body exceeds ``max_request_bytes``
``policy.unparsable_request``      medium    the body of a recognised protocol cannot be parsed
``policy.host_not_allowed``        high      an outbound (forward) call's destination is not admitted, or a
                                             name resolved to an internal address no entry lists
``policy.model_not_allowed``       medium    a model request names a model ``models`` does not list, or none
``policy.tool_not_allowed``        high      a tool call (in a response, or MCP ``tools/call``) of a tool
                                             ``tools`` does not list
``policy.tool_arguments_invalid``  high      a listed tool's arguments are not JSON or fail its schema
``policy.tool_held``               medium    a valid call of a tool whose rule says ``hold``: it waits for
                                             a reviewer (``gateway.holds``)
``policy.tool_offer_not_allowed``  low       a request offers, or MCP ``tools/list`` returns, unlisted tools
``policy.rate_limited``            low       the agent is over its requests or tokens per minute
``policy.response_too_large``      medium    the response body exceeds ``max_response_bytes``
=================================  ========  ==========================================================

Rate limiting runs last and only when no other rule blocks, so a refused request spends no budget.
Tokens: ``max_tokens`` is reserved at the request; the response's usage settles it. A response without
usage is charged its reservation or, if larger, an estimate of one token per four characters of prompt
and answer (so leaving out ``max_tokens`` and usage does not escape the budget); an error response
without usage is charged nothing.
"""

from __future__ import annotations

import math
from itertools import islice

import jsonschema

from gateway.events import RequestEvent, ResponseEvent, ToolCall, ToolSpec
from gateway.findings import Finding, Severity, decide
from gateway.hosts import refusal, resolved_refusal
from gateway.ratelimit import RateLimiter
from policies.gateway import GatewayProfile, ToolRule
from policies.globs import glob_matches, is_glob

__all__ = ["check_connection", "check_request", "check_response", "check_tool_call", "tool_rule"]

MODEL_PROTOCOLS = frozenset({"openai.chat", "openai.completions", "anthropic.messages"})

_SEVERITY: dict[str, Severity] = {
    "request_too_large": "medium",
    "unparsable_request": "medium",
    "host_not_allowed": "high",
    "model_not_allowed": "medium",
    "tool_not_allowed": "high",
    "tool_arguments_invalid": "high",
    "tool_held": "medium",
    "tool_offer_not_allowed": "low",
    "rate_limited": "low",
    "response_too_large": "medium",
}
_EXCERPT = 200
_REASON = 500
_MAX_LISTED = 10
_MAX_SCHEMA_ERRORS = 3


def check_request(event: RequestEvent, profile: GatewayProfile, limits: RateLimiter) -> tuple[Finding, ...]:
    """Judge what an agent sent; admits it to the rate limiter when nothing else blocks it."""
    findings: list[Finding] = []
    if event.body_size > profile.max_request_bytes:
        reason = f"request body of {event.body_size} bytes exceeds {profile.max_request_bytes}"
        findings.append(_finding("request_too_large", profile, reason, str(event.body_size)))
    if event.parse_error is not None:
        reason = f"{event.protocol} request cannot be parsed: {event.parse_error}"
        findings.append(_finding("unparsable_request", profile, reason, event.parse_error))
    if event.direction == "forward" and (why := refusal(event.host, event.port, profile)) is not None:
        findings.append(_finding("host_not_allowed", profile, why, f"{event.host}:{event.port}"))
    if event.protocol in MODEL_PROTOCOLS and event.parse_error is None:
        findings.extend(_check_model(event.model, profile))
    if event.tool_call is not None:
        findings.extend(check_tool_call(event.tool_call, profile))
    findings.extend(_check_offered(event.tools, profile, "the request offers the model"))
    if decide(findings) != "block":
        reserve = (event.max_tokens or 0) if event.protocol in MODEL_PROTOCOLS else 0
        denial = limits.admit(event.agent, event.request_id, profile.rate, reserve)
        if denial is not None:
            retry = () if denial.retry_after_s is None else (f"retry_after_s={math.ceil(denial.retry_after_s)}",)
            findings.append(_finding("rate_limited", profile, f"agent {event.agent!r} is {denial.reason}", *retry))
    return tuple(findings)


def check_response(
    event: ResponseEvent, request: RequestEvent, profile: GatewayProfile, limits: RateLimiter
) -> tuple[Finding, ...]:
    """Judge what came back for ``request``, and settle the request's token reservation."""
    findings: list[Finding] = []
    if event.body_size > profile.max_response_bytes:
        reason = f"response body of {event.body_size} bytes exceeds {profile.max_response_bytes}"
        findings.append(_finding("response_too_large", profile, reason, str(event.body_size)))
    for call in event.tool_calls:
        findings.extend(check_tool_call(call, profile))
    findings.extend(_check_offered(event.tools, profile, "the MCP server lists"))
    limits.settle(request.request_id, _used_tokens(event, request))
    return tuple(findings)


def check_tool_call(call: ToolCall, profile: GatewayProfile) -> tuple[Finding, ...]:
    """Judge one tool call: a listed tool, with valid JSON arguments that satisfy its schema (and, if its rule
    says so, a reviewer's approval)."""
    rule = tool_rule(profile, call.name)
    if rule is None:
        reason = f"tool {call.name!r} is not in profile {profile.name!r}'s tools"
        return (_finding("tool_not_allowed", profile, reason, call.name),)
    if not call.valid_json:
        reason = f"arguments of tool {call.name!r} are not valid JSON"
        return (_finding("tool_arguments_invalid", profile, reason, call.arguments_raw),)
    held = (_finding("tool_held", profile, f"tool {call.name!r} waits for a reviewer in profile {profile.name!r}",
                     call.arguments_raw),) if rule.hold else ()
    if rule.validator is None:
        return held
    try:
        errors = list(islice(rule.validator.iter_errors(call.arguments), _MAX_SCHEMA_ERRORS))
    except Exception as exc:  # an unresolvable $ref, a recursion limit: the rule failed, which is not "valid"
        reason = f"arguments of tool {call.name!r} could not be checked: {type(exc).__name__}: {exc}"
        return (_finding("tool_arguments_invalid", profile, reason, call.arguments_raw, error=True),)
    if not errors:
        return held
    reason = f"arguments of tool {call.name!r} do not satisfy its schema"
    return (_finding("tool_arguments_invalid", profile, reason, *(_schema_error(e) for e in errors)),)


def check_connection(host: str, port: int, address: str, profile: GatewayProfile) -> tuple[Finding, ...]:
    """Judge the address an admitted outbound ``host`` resolved to (DNS rebinding, ``*.nip.io``): call it when
    the upstream connection is made, before the request is sent."""
    why = resolved_refusal(host, address, port, profile)
    return () if why is None else (_finding("host_not_allowed", profile, why, f"{host} -> {address}"),)


def _check_model(model: str | None, profile: GatewayProfile) -> tuple[Finding, ...]:
    if model is None:
        return (_finding("model_not_allowed", profile, "the request names no model"),)
    if any(glob_matches(allowed, model) for allowed in profile.models):
        return ()
    reason = f"model {model!r} is not in profile {profile.name!r}'s models"
    return (_finding("model_not_allowed", profile, reason, model),)


def _check_offered(tools: tuple[ToolSpec, ...], profile: GatewayProfile, who: str) -> tuple[Finding, ...]:
    if not tools:  # most requests and responses offer none
        return ()
    unlisted = list(dict.fromkeys(t.name for t in tools if tool_rule(profile, t.name) is None))
    if not unlisted:
        return ()
    shown = ", ".join(map(repr, unlisted[:_MAX_LISTED])) + (" ..." if len(unlisted) > _MAX_LISTED else "")
    reason = f"{who} {len(unlisted)} tool(s) not in profile {profile.name!r}'s tools: {shown}"
    return (_finding("tool_offer_not_allowed", profile, reason, *unlisted[:_MAX_LISTED]),)


def tool_rule(profile: GatewayProfile, name: str) -> ToolRule | None:
    """The rule naming ``name`` exactly, else the first glob that matches it."""
    globs = []
    for rule in profile.tools:
        if not is_glob(rule.name):
            if rule.name == name:
                return rule
        elif glob_matches(rule.name, name):
            globs.append(rule)
    return globs[0] if globs else None


def _used_tokens(event: ResponseEvent, request: RequestEvent) -> int:
    if request.protocol not in MODEL_PROTOCOLS:
        return 0
    if event.usage is not None:
        return event.usage.total_tokens
    if event.status >= 400:
        return 0
    text = [request.system, *(m.text for m in request.messages), event.text]
    text += [call.arguments_raw for call in event.tool_calls]
    return max(request.max_tokens or 0, math.ceil(sum(map(len, text)) / 4))


def _schema_error(error: jsonschema.ValidationError) -> str:
    return f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"


def _finding(rule: str, profile: GatewayProfile, reason: str, *evidence: str, error: bool = False) -> Finding:
    return Finding(
        rule=f"policy.{rule}",
        action=getattr(profile.actions, rule),
        reason=_excerpt(reason, _REASON),
        severity=_SEVERITY[rule],
        evidence=tuple(_excerpt(e, _EXCERPT) for e in evidence),
        error=error,
    )


def _excerpt(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
