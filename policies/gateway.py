"""The ``gateway`` section of a policy: what each agent may reach through the gateway, and how it is recorded.

A policy without a gateway section allows nothing: the built-in default profile lists no model, no tool
and no host, every rule blocks (offering the model an unlisted tool only alerts: calling it blocks), and
the audit log fails closed (no record, no forwarding). That is the
right answer for a document that says nothing; ``policies/dev.yaml`` opens things up for a laptop and
``policies/production.yaml`` is the template to list a deployment's models, tools and hosts in.

Agents are mapped to profiles by name (the name their API key was issued under); an agent that no
profile names gets ``default_profile``. Each profile sets, per rule, whether a violation is allowed
(recorded only), alerted (forwarded and flagged for review), held (a tool call waits for a reviewer's
decision: human in the loop) or blocked (refused).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    WithJsonSchema,
    model_validator,
)

from policies.globs import Glob
from policies.hosts import HostPattern, parse_host_pattern

if TYPE_CHECKING:  # imported where schemas are checked: it costs most of a second, which every process would pay
    import jsonschema

__all__ = [
    "Action",
    "AuditSection",
    "GatewayProfile",
    "GatewaySection",
    "HoldSection",
    "HostRule",
    "ImmediateAction",
    "RateLimits",
    "RuleActions",
    "ToolRule",
]

Action = Literal["allow", "alert", "hold", "block"]
"""allow: record only; alert: forward and flag for review; hold: wait for a reviewer's approval (up to
``holds.timeout_s``), then forward or refuse; block: refuse."""

ImmediateAction = Literal["allow", "alert", "block"]
"""The actions of rules that judge what no reviewer can change by waiting (a size, a rate, where a name resolves)."""

_DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def _parse_host(value: object) -> HostPattern:
    if isinstance(value, HostPattern):
        return value
    if not isinstance(value, str):
        raise ValueError("a host pattern must be a string")
    return parse_host_pattern(value)


HostRule = Annotated[
    HostPattern, PlainValidator(_parse_host), PlainSerializer(str), WithJsonSchema({"type": "string"})
]
"""A host allow-list entry; the grammar is in ``policies.hosts``."""


def _check_schema(schema: dict[str, Any]) -> dict[str, Any]:
    declared = schema.get("$schema", _DRAFT_2020_12)
    if not isinstance(declared, str) or declared.rstrip("#") != _DRAFT_2020_12:
        raise ValueError(f"argument schemas are JSON Schema draft 2020-12, not {declared!r}")
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(map(str, exc.absolute_path)) or "(root)"
        raise ValueError(f"not a valid JSON Schema at {where}: {exc.message}") from exc
    _local_refs_only(schema)
    return schema


def _local_refs_only(node: object) -> None:
    """A remote reference cannot be resolved offline and would fail at request time: only '#...' is allowed."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and not (isinstance(value, str) and value.startswith("#")):
                raise ValueError(f"only local references ('#/$defs/...') are allowed, not {key}: {value!r}")
            _local_refs_only(value)
    elif isinstance(node, list):
        for value in node:
            _local_refs_only(value)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolRule(_Strict):
    """A tool an agent's model may call or an agent may call over MCP, and what its arguments must look like."""

    name: Glob
    """The tool's name, or a glob over names; an exact name takes precedence over any glob."""

    arguments: Annotated[dict[str, Any], AfterValidator(_check_schema)] | None = None
    """A JSON Schema (draft 2020-12, ``format`` asserted, local ``$ref`` only) the parsed arguments must satisfy;
    None: any arguments, as long as they are valid JSON."""

    hold: bool = False
    """Every call waits for a reviewer (``policy.tool_held``): a sensitive sink such as ``send_money``."""

    _validator: jsonschema.Draft202012Validator | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        if self.arguments is not None:
            import jsonschema

            checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
            self._validator = jsonschema.Draft202012Validator(self.arguments, format_checker=checker)

    @property
    def validator(self) -> jsonschema.Draft202012Validator | None:
        """The compiled argument schema, built once when the policy loads."""
        return self._validator


class RateLimits(_Strict):
    """Token buckets per agent, refilled continuously; limits are per gateway process, not per fleet."""

    requests_per_minute: int | None = Field(None, ge=1)
    """Requests of any kind; a burst may spend a whole minute's worth at once. None: unlimited."""

    tokens_per_minute: int | None = Field(None, ge=1)
    """Model tokens (prompt + completion, from the response's usage); a request's max_tokens is reserved when it
    is admitted and settled against the usage when it completes. None: unlimited."""


class RuleActions(_Strict):
    """What to do when a rule is violated; each field is named after its rule id (``policy.<field>``). Only
    the rules that judge a tool call can hold it."""

    model_not_allowed: ImmediateAction = "block"
    """A model request names a model that ``models`` does not list (or names none)."""

    tool_not_allowed: Action = "block"
    """A proposed or MCP tool call names a tool that ``tools`` does not list."""

    tool_arguments_invalid: Action = "block"
    """A listed tool's arguments are not valid JSON or do not satisfy its schema."""

    tool_held: Action = "hold"
    """A call of a tool whose rule says ``hold``; alert instead to try the rules out without waiting."""

    tool_offer_not_allowed: ImmediateAction = "alert"
    """A request offers the model, or an MCP server lists, a tool that ``tools`` does not list. Calls of it are
    judged by ``tool_not_allowed``; offering alone is worth a look, not a refusal."""

    host_not_allowed: ImmediateAction = "block"
    """An outbound call goes to a destination that ``hosts`` does not admit, or a name resolves to an internal
    address that no entry lists explicitly."""

    rate_limited: ImmediateAction = "block"
    """The agent is over ``rate``. Under allow or alert the buckets behave exactly as if blocking, so the
    findings show what blocking would have refused."""

    request_too_large: ImmediateAction = "block"
    """The request body is larger than ``max_request_bytes``."""

    response_too_large: ImmediateAction = "block"
    """The response body is larger than ``max_response_bytes``."""

    unparsable_request: ImmediateAction = "block"
    """A request of a recognised protocol whose body cannot be understood, so no other rule can judge it."""


class GatewayProfile(_Strict):
    """What a group of agents may do."""

    name: str = Field(min_length=1, max_length=128)
    """Referenced by ``default_profile`` and shown in findings."""

    agents: tuple[str, ...] = ()
    """Agent names (as issued by ``modelgate agents add``) that get this profile."""

    models: tuple[Glob, ...] = ()
    """Model names or globs (case-sensitive) a model request may name; empty: none."""

    tools: tuple[ToolRule, ...] = ()
    """Tools that may be called; empty: none."""

    hosts: tuple[HostRule, ...] = ()
    """Destinations outbound calls may reach; empty: none. Globs and ``*`` admit public names and addresses
    only: loopback, private, link-local (cloud metadata), single-label and ``.internal``-style names must be
    listed explicitly (an exact name, or a network lying wholly inside internal address space)."""

    default_ports: tuple[Annotated[int, Field(ge=1, le=65535)], ...] = (443,)
    """Ports admitted by a host entry that names none."""

    rate: RateLimits = RateLimits()
    """Per-agent request and token budgets."""

    max_request_bytes: int = Field(16 << 20, ge=1)
    """Largest request body; the proxy stops reading past it."""

    max_response_bytes: int = Field(64 << 20, ge=1)
    """Largest response body; the proxy stops reading past it."""

    actions: RuleActions = RuleActions()
    """The action of each rule."""


class AuditSection(_Strict):
    """How the audit writer and the proxy treat the audit log."""

    fail_closed: bool = True
    """If a request's record cannot be committed, refuse it with 503. False: forward anyway and raise an
    alert, trading the "nothing passes unrecorded" guarantee for availability."""

    store_bodies: bool = True
    """Keep request and response bodies (secrets redacted) for review; False keeps only metadata and findings."""

    body_cap_bytes: int = Field(1 << 20, ge=0)
    """Bytes of each body kept; the full size and SHA-256 of the original are recorded in any case."""

    checkpoint_every_records: int = Field(1000, ge=1)
    """A signed checkpoint of the hash chain after this many records..."""

    checkpoint_interval_s: float = Field(60.0, gt=0)
    """...or after this many seconds with new records, whichever comes first (and at clean shutdown)."""


class HoldSection(_Strict):
    """How held calls wait for a reviewer (the admin UI's approvals queue, or ``modelgate calls approve``)."""

    timeout_s: float = Field(120.0, gt=0, le=3600)
    """How long a held call waits; then it is refused, as a rejection is. Agents' HTTP clients must wait longer
    (the openai client waits 600 s by default)."""


class GatewaySection(_Strict):
    """Agent profiles, the agent-to-profile map, the audit log's and the held calls' settings."""

    default_profile: str = "default"
    """The profile of agents that no profile names."""

    profiles: tuple[GatewayProfile, ...] = ()
    """The profiles; empty: only the built-in ``default``, which allows nothing."""

    audit: AuditSection = AuditSection()
    """Audit log settings."""

    holds: HoldSection = HoldSection()
    """Held calls' settings."""

    _by_agent: dict[str, GatewayProfile] = PrivateAttr(default_factory=dict)
    _default: GatewayProfile = PrivateAttr(default_factory=lambda: GatewayProfile(name="default"))

    @model_validator(mode="after")
    def _index(self) -> GatewaySection:
        by_name: dict[str, GatewayProfile] = {}
        for profile in self.profiles:
            if profile.name in by_name:
                raise ValueError(f"profile {profile.name!r} is defined twice")
            by_name[profile.name] = profile
            for agent in profile.agents:
                if (other := self._by_agent.setdefault(agent, profile)) is not profile:
                    raise ValueError(f"agent {agent!r} is in two profiles: {other.name!r} and {profile.name!r}")
        if self.profiles:
            if self.default_profile not in by_name:
                raise ValueError(f"default_profile {self.default_profile!r} is not a defined profile")
            self._default = by_name[self.default_profile]
        return self

    def profile_for(self, agent: str) -> GatewayProfile:
        """The profile that governs ``agent``."""
        return self._by_agent.get(agent, self._default)
