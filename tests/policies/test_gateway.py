from pathlib import Path

import pytest

from policies import Policy, PolicyError, load_policy, shipped_policy
from policies.gateway import GatewaySection


def load(text: str, folder: Path) -> Policy:
    (folder / "policy.yaml").write_text(text)
    return load_policy(folder / "policy.yaml")


def test_no_gateway_section_allows_nothing_and_fails_closed(tmp_path: Path) -> None:
    section = load("version: 1\n", tmp_path).gateway
    default = section.profile_for("anyone")
    assert (default.name, default.models, default.tools, default.hosts) == ("default", (), (), ())
    assert set(default.actions.model_dump().values()) == {"block", "alert", "hold"}
    assert default.actions.tool_offer_not_allowed == "alert"  # calls of unlisted tools are blocked anyway
    assert default.actions.tool_held == "hold"  # only for tools whose rule says so: none here
    assert section.holds.timeout_s == 120
    assert section.audit.fail_closed is True and section.audit.store_bodies is True


def test_shipped_gateway_sections() -> None:
    dev, prod = shipped_policy("dev").gateway, shipped_policy("production").gateway
    d = dev.profile_for("whoever")
    assert (d.name, d.models, d.default_ports) == ("dev", ("*",), (80, 443))
    assert not any(str(h).startswith(("169.254", "100.64", "fc00", "fd")) for h in d.hosts)
    p = prod.profile_for("whoever")
    assert (p.name, p.models, p.tools, p.hosts) == ("default", (), (), ())
    assert set(p.actions.model_dump().values()) == {"block", "alert", "hold"}
    assert p.rate.requests_per_minute == 120 and prod.audit.fail_closed and dev.audit.fail_closed


def test_agents_map_to_profiles(tmp_path: Path) -> None:
    section = load(
        "gateway:\n"
        "  default_profile: base\n"
        "  profiles:\n"
        "    - {name: base, models: [a]}\n"
        "    - {name: ci, agents: [ci-bot, nightly], models: ['b*']}\n",
        tmp_path,
    ).gateway
    assert section.profile_for("ci-bot").name == "ci" and section.profile_for("nightly").models == ("b*",)
    assert section.profile_for("someone-else").name == "base"


def test_tool_schemas_are_compiled_once_at_load(tmp_path: Path) -> None:
    section = load(
        "gateway:\n  profiles:\n    - name: default\n      tools:\n"
        "        - {name: w, arguments: {type: object, required: [city]}}\n        - {name: free}\n",
        tmp_path,
    ).gateway
    with_schema, free = section.profile_for("x").tools
    assert with_schema.validator is not None and free.validator is None
    assert with_schema.validator.is_valid({"city": "Oslo"}) and not with_schema.validator.is_valid({})


def test_a_tool_can_be_held_and_tool_rules_can_hold_but_what_waiting_cannot_change_cannot(tmp_path: Path) -> None:
    section = load("gateway:\n"
                   "  profiles:\n"
                   "    - name: default\n"
                   "      tools: [{name: send_money, hold: true}, {name: search}]\n"
                   "      actions: {tool_not_allowed: hold, tool_arguments_invalid: hold}\n"
                   "  holds: {timeout_s: 30}\n", tmp_path).gateway
    profile = section.profile_for("anyone")
    assert [t.hold for t in profile.tools] == [True, False] and section.holds.timeout_s == 30
    assert (profile.actions.tool_not_allowed, profile.actions.tool_arguments_invalid) == ("hold", "hold")


def test_the_section_round_trips_through_json() -> None:
    policy = shipped_policy("dev")
    again = GatewaySection.model_validate(policy.gateway.model_dump(mode="json"))
    assert again == policy.gateway and [str(h) for h in again.profile_for("x").hosts][0] == "*:*"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("gateway: {unknown: 1}", "gateway.unknown"),
        ("gateway: {profiles: [{name: p, actions: {model_not_allowed: deny}}]}", "model_not_allowed"),
        ("gateway: {profiles: [{name: p, actions: {no_such_rule: block}}]}", "no_such_rule"),
        ("gateway: {profiles: [{name: p, hosts: ['example.*']}]}", "top-level"),
        ("gateway: {profiles: [{name: p, hosts: ['10.0.0.1/8']}]}", "host bits"),
        ("gateway: {profiles: [{name: p, hosts: ['0x7f.1']}]}", "dotted decimal"),
        ("gateway: {profiles: [{name: p, hosts: [443]}]}", "must be a string"),
        ("gateway: {profiles: [{name: p, models: ['gpt 4']}]}", "whitespace"),
        ("gateway: {profiles: [{name: p, models: ['']}]}", "empty"),
        ("gateway: {profiles: [{name: p, tools: [{name: t, arguments: {type: 12}}]}]}", "not a valid JSON Schema"),
        ("gateway: {profiles: [{name: p, tools: [{name: t, arguments: {properties: {a: {minimum: x}}}}]}]}",
         "properties/a/minimum"),
        ("gateway: {profiles: [{name: p, tools: [{name: t, arguments: {$ref: 'https://evil/s.json'}}]}]}",
         "only local references"),
        ("gateway: {profiles: [{name: p, tools: [{name: t, arguments: "
         "{$schema: 'http://json-schema.org/draft-07/schema#'}}]}]}", "draft 2020-12"),
        ("gateway: {profiles: [{name: p, tools: [{name: t, arguments: {$schema: 7}}]}]}", "draft 2020-12"),
        ("gateway: {profiles: [{name: p, tools: [{name: t, arguments: [1]}]}]}", "arguments"),
        ("gateway: {profiles: [{name: default}, {name: default}]}", "defined twice"),
        ("gateway: {profiles: [{name: default, agents: [a]}, {name: b, agents: [a]}]}", "two profiles"),
        ("gateway: {default_profile: missing, profiles: [{name: p}]}", "default_profile 'missing'"),
        ("gateway: {profiles: [{name: p, rate: {requests_per_minute: 0}}]}", "requests_per_minute"),
        ("gateway: {profiles: [{name: p, default_ports: [0]}]}", "default_ports"),
        ("gateway: {profiles: [{name: p, max_request_bytes: 0}]}", "max_request_bytes"),
        ("gateway: {profiles: [{name: ''}]}", "name"),
        ("gateway: {audit: {checkpoint_interval_s: 0}}", "checkpoint_interval_s"),
        ("gateway: {audit: {fail_closed: maybe}}", "fail_closed"),
        ("gateway: {profiles: [{name: p, actions: {rate_limited: hold}}]}", "rate_limited"),
        ("gateway: {profiles: [{name: p, actions: {host_not_allowed: hold}}]}", "host_not_allowed"),
        ("gateway: {profiles: [{name: p, tools: [{name: t, hold: maybe}]}]}", "hold"),
        ("gateway: {holds: {timeout_s: 0}}", "timeout_s"),
        ("gateway: {holds: {timeout_s: 7200}}", "timeout_s"),
    ],
)  # fmt: skip
def test_invalid_gateway_sections_are_refused_with_the_reason(tmp_path: Path, text: str, why: str) -> None:
    with pytest.raises(PolicyError, match="invalid") as caught:
        load(text + "\n", tmp_path)
    assert why in caught.value.reason


def test_the_section_is_frozen() -> None:
    with pytest.raises(Exception, match="frozen"):
        shipped_policy("dev").gateway.profile_for("x").models = ()  # type: ignore[misc]
