"""Detector ``toolcall``: tool calls that a hijacked agent makes, judged before they run.

Every tool call the gateway sees is judged the same way, whether a model proposed it (OpenAI
``tool_calls``, Anthropic ``tool_use``), an agent sends it (MCP ``tools/call``) or it is a plain HTTP
request through the forward proxy (its URL and body are its arguments). Rules, with the severity they
report (the policy maps severities to actions):

    instructed_value      high    an argument carries an address, account, link or number that an
                                  instruction in untrusted content supplied and the user never gave
    instructed_argument   high    a sink's argument (a name, an id, a subject, a body) is copied from
                                  an instruction in untrusted content and the user never wrote it
    instructed_action     high    the call does what a request in untrusted content asked for ("get all
                                  user information", "make a reservation at ...") and the user's own
                                  words never did (``actions``); medium for a read that is not sensitive
    tool_named_in_content high    untrusted content told the agent to use this very tool with these
                                  arguments
                          low     untrusted content names the tool (other arguments: the action, not the
                                  name, is the evidence)
    tainted_value         low     a sink's argument carries a value from untrusted content (a recipient
                                  taken from a document: how "reply to the sender" works; recorded)
    sink_after_hijack     high    a sink called after this session already had a hijack finding
                                  (deleting the sent mail, the second transfer)
    sink_after_untrusted  low     a sink called after untrusted content entered the conversation
    sensitive_read        medium  credentials or personal records read after untrusted content
    secret_egress         high    an API key, token or private key in the arguments (medium when the
                                  user supplied it)
    personal_data_egress  medium  a card number or an IBAN the user did not give, sent by a messaging,
                                  sharing or publishing tool or an outbound HTTP body
    encoded_blob          medium  a long base64/hex run (high inside a URL)
    shell_injection, sql_injection, path_traversal, ssrf   see ``arguments``

Values are followed from content to arguments by ``provenance``; sinks are recognised by ``sinks``.
Instructions in content the user delegated to by name ("do the tasks in the email from 'boss@corp'",
``delegation``) are the user's: they make nothing instructed. A detector never raises on bad input:
arguments that are not JSON are judged as one string.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from gateway.detect.actions import Action, action_of
from gateway.detect.arguments import dangerous
from gateway.detect.base import SessionContext
from gateway.detect.egress import blobs, secrets
from gateway.detect.provenance import Origin, Provenance
from gateway.detect.sinks import SinkProfile, profile_of
from gateway.detect.values import Value, extract, fold
from gateway.events import RequestEvent, ResponseEvent, ToolCall, ToolSpec
from gateway.findings import SEVERITY_RANK, Finding, Severity

__all__ = ["MAX_CALL_CHARS", "MAX_LEAVES", "MAX_LEAF_CHARS", "ToolCallDetector"]

MAX_LEAVES = 256
"""String arguments judged per call (depth-first); the rest are not."""
MAX_LEAF_CHARS = 8192
"""Characters of each string argument judged."""
MAX_CALL_CHARS = 65536
"""Characters judged per call, all arguments together."""
_MAX_TOOLS = 512
_MAX_PROFILES = 4096
_URL_KEYS = frozenset(("url", "uri", "link", "href", "endpoint", "webhook", "callback", "redirect"))
_CONTENT_KEYS = frozenset(("content", "data", "file", "attachment", "attachments", "image", "blob", "bytes", "body",
                           "base64", "payload", "document"))
_ID_KEY_SUFFIXES = ("id", "ids", "_id", "_ids", "uuid", "key", "number", "name", "names")
_EGRESS = frozenset(("message", "share", "publish"))
_DESTINATIONS = frozenset(("email", "domain", "phone", "iban", "account", "crypto"))


@dataclass(slots=True)
class _State:
    provenance: Provenance = field(default_factory=Provenance)
    tools: dict[str, ToolSpec] = field(default_factory=dict)
    after_untrusted: bool = False
    """Untrusted content entered the conversation after the user's last message."""
    hijack: str | None = None
    """The first high-severity finding of this session, for ``sink_after_hijack``."""


@dataclass(slots=True)
class _Call:
    """What one call is judged on."""

    name: str
    channel: str
    leaves: list[tuple[str, str]]
    profile: SinkProfile
    action: Action | None = None
    """What the tool's name says it does (HTTP requests have no name to read)."""
    destination: str | None = None
    """An HTTP request's own URL: followed for provenance, not judged as an argument (the gateway's host
    allow-list decides where the agent may connect; an internal host listed there is no SSRF)."""
    findings: list[Finding] = field(default_factory=list)


class ToolCallDetector:
    """Judges tool calls against where their arguments came from and what the tool can do."""

    name = "toolcall"

    def __init__(self) -> None:
        self._profiles: dict[tuple[str, str, frozenset[str], tuple[str, ...]], SinkProfile] = {}

    def on_request(self, event: RequestEvent, context: SessionContext) -> list[Finding]:
        state: _State = context.of(self.name, _State)
        self._read_request(event, state)
        if event.tool_call is not None:
            call = event.tool_call
            channel = f"MCP tools/call to {call.server or event.host}"
            return self._judge(call, state.tools.get(call.name), state, channel)
        if event.protocol == "http":
            return self._judge_http(event, state)
        return []

    def on_response(self, event: ResponseEvent, request: RequestEvent, context: SessionContext) -> list[Finding]:
        state: _State = context.of(self.name, _State)
        if event.tool_result is not None:
            server = request.tool_call.server if request.tool_call is not None else None
            label = f"MCP result of {server or request.host} {event.tool_result.name or request.mcp_method or ''}"
            state.after_untrusted |= state.provenance.add_untrusted(event.tool_result.content, label.strip())
        elif request.protocol == "http" and request.direction == "forward" and event.text:
            state.after_untrusted |= state.provenance.add_untrusted(event.text, f"response from {request.host}")
        self._remember_tools(event.tools, state)
        return []

    def on_tool_call(self, call: ToolCall, request: RequestEvent, context: SessionContext) -> list[Finding]:
        state: _State = context.of(self.name, _State)
        spec = state.tools.get(call.name) or next((t for t in request.tools if t.name == call.name), None)
        return self._judge(call, spec, state, "proposed by the model")

    # -- reading what enters the model --------------------------------------------------------------

    def _read_request(self, event: RequestEvent, state: _State) -> None:
        provenance = state.provenance
        provenance.add_trusted(event.system)
        last_user = last_tool = -1
        for i, message in enumerate(event.messages):
            if message.role in ("user", "system", "developer"):
                provenance.add_trusted(message.text, user=message.role == "user")
                last_user = i
            elif message.role in ("tool", "function"):
                last_tool = i
        for result in event.tool_results:
            provenance.add_untrusted(result.content, f"tool result of {result.name or 'a tool'}")
        if event.messages:
            state.after_untrusted = last_tool > last_user
        elif event.tool_results:
            state.after_untrusted = True
        self._remember_tools(event.tools, state)

    def _remember_tools(self, tools: tuple[ToolSpec, ...], state: _State) -> None:
        if tools and all(state.tools.get(spec.name) == spec for spec in tools):
            return
        for spec in tools:
            if spec.name not in state.tools and len(state.tools) >= _MAX_TOOLS:
                del state.tools[next(iter(state.tools))]
            state.tools[spec.name] = spec

    # -- judging a call -----------------------------------------------------------------------------

    def _judge_http(self, event: RequestEvent, state: _State) -> list[Finding]:
        path, _, query = event.path.partition("?")
        leaves = [("path", path), ("query", query)] if query else [("path", path)]
        leaves += [("body", m.text[:MAX_LEAF_CHARS]) for m in event.messages if m.role == "body"]
        method = event.method.upper()
        category = {"POST": "publish", "PUT": "publish", "PATCH": "publish", "DELETE": "delete"}.get(method)
        profile = SinkProfile(frozenset({category} if category else ()), (f"HTTP {method}",),
                              reads=category is None, sensitive_read=False)
        destination = f"{event.scheme}://{event.host}:{event.port}{path}"
        return self._rules(_Call(f"HTTP {method} {event.host}", "outbound HTTP request", leaves, profile,
                                 destination=destination), state)

    def _judge(self, call: ToolCall, spec: ToolSpec | None, state: _State, channel: str) -> list[Finding]:
        arguments = call.arguments if call.valid_json and call.arguments is not None else call.arguments_raw
        leaves = list(_leaves(arguments))
        keys = frozenset(key for key, text in leaves if text.strip())
        profile = self._profile(call.name, spec, keys)
        return self._rules(_Call(call.name, channel, leaves, profile, action_of(call.name)), state)

    def _profile(self, name: str, spec: ToolSpec | None, keys: frozenset[str]) -> SinkProfile:
        declared = spec.input_schema.get("properties") if spec is not None and not keys else None
        cache_key = (name, spec.description[:400] if spec else "", keys,
                     tuple(declared) if isinstance(declared, dict) else ())
        profile = self._profiles.get(cache_key)
        if profile is None:
            if len(self._profiles) >= _MAX_PROFILES:
                self._profiles.clear()
            profile = self._profiles[cache_key] = profile_of(name, spec, keys)
        return profile

    def _rules(self, call: _Call, state: _State) -> list[Finding]:
        self._provenance(call, state)
        self._egress(call, state)
        self._arguments(call)
        strongest = max((SEVERITY_RANK[f.severity] for f in call.findings), default=-1)
        if call.profile.is_sink and strongest < SEVERITY_RANK["high"] and state.hijack is not None:
            call.findings.append(self._finding(call, "sink_after_hijack", "high", 0.8,
                                               f"{call.profile.describe()} after an earlier hijack finding in this "
                                               "session", (state.hijack,)))
        if call.profile.categories - {"write"} and not call.findings and state.after_untrusted:
            call.findings.append(self._finding(call, "sink_after_untrusted", "low", 0.2 + 0.2 * call.profile.weight,
                                               f"{call.profile.describe()} right after untrusted content", ()))
        if state.hijack is None and any(SEVERITY_RANK[f.severity] >= SEVERITY_RANK["high"] for f in call.findings):
            top = max(call.findings, key=lambda f: SEVERITY_RANK[f.severity])
            state.hijack = f"{call.name}: {top.rule.rsplit('.', 1)[-1]} ({top.reason[:100]})"
        return call.findings

    def _provenance(self, call: _Call, state: _State) -> None:
        provenance, profile = state.provenance, call.profile
        instructed: list[str] = []
        tainted: list[str] = []
        destinations: list[bool] = []
        copied: list[tuple[str, str, tuple[str, str]]] = []
        own_url = [("url", call.destination, False)] if call.destination else []
        for key, text, argument in own_url + [(key, text, True) for key, text in call.leaves]:
            folded = fold(text)
            for value in _values(folded):
                origin = provenance.origin(value)
                if origin is not None:
                    (instructed if origin.instructed else tainted).append(_trace(key, value.value, origin))
                if value.kind in _DESTINATIONS:
                    destinations.append(value.value in provenance.trusted_values
                                        or provenance.trusted_says(value.value))
            if argument and profile.is_sink and (hit := _copied(key, folded, provenance)) is not None:
                copied.append((key, text, hit))
        if copied and not instructed:
            key, text, (source, sentence) = copied[0]
            # content copied from an instruction but sent only where the user asked: the data goes nowhere new
            contained = profile.categories <= _EGRESS and bool(destinations) and all(destinations)
            severity = "medium" if contained else "high"
            where = ", to destinations the user gave" if contained else ""
            call.findings.append(self._finding(
                call, "instructed_argument", severity, (0.5 if contained else 0.75) + 0.2 * profile.weight,
                f"{profile.describe()} with {key!r} copied from an instruction in {source}{where}",
                (f"{key}={text[:80]!r} ← “{sentence}”",)))
        if instructed:
            score = 0.8 + 0.2 * profile.weight
            call.findings.append(self._finding(call, "instructed_value", "high", score,
                                               f"{_what(profile)} acts on values that an instruction in untrusted "
                                               "content supplied and the user never gave", tuple(instructed[:4])))
        elif tainted and profile.categories - {"write"}:
            call.findings.append(self._finding(call, "tainted_value", "low", 0.3 + 0.2 * profile.weight,
                                               f"{profile.describe()} with values from untrusted content that the "
                                               "user never gave", tuple(tainted[:4])))
        if call.action is not None and not (instructed or copied) and (
                request := provenance.instructed_action(call.action)) is not None and not _user_named(call, provenance):
            source, sentence = request
            acts = profile.is_sink or profile.sensitive_read
            call.findings.append(self._finding(
                call, "instructed_action", "high" if acts else "medium", (0.75 if acts else 0.5) + 0.2 * profile.weight,
                f"{source} asks for what {call.name!r} does, and the user never did", (f"“{sentence}”",)))
        if (mention := provenance.mentioned(call.name)) is not None:
            spelled = all(fold(text) in mention.following for _, text in call.leaves if len(text.strip()) > 1)
            strong = mention.directive and spelled
            told = "tells the agent to use" if mention.directive else "names"
            how = " with these arguments" if strong else ""
            call.findings.append(self._finding(call, "tool_named_in_content", "high" if strong else "low",
                                               0.85 if strong else 0.3, f"{mention.source} {told} {call.name!r}{how}",
                                               (f"“{mention.excerpt}”",)))
        if profile.sensitive_read and state.after_untrusted:
            call.findings.append(self._finding(call, "sensitive_read", "medium", 0.5,
                                               f"{call.name!r} reads credentials or personal records after "
                                               "untrusted content entered the conversation", ()))

    def _egress(self, call: _Call, state: _State) -> None:
        leaked: list[str] = []
        own: list[str] = []
        blob: tuple[str, bool] | None = None
        egress = bool(call.profile.categories & _EGRESS) or call.channel == "outbound HTTP request"
        personal: list[str] = []
        for key, text in call.leaves:
            for leak in secrets(text):
                (own if state.provenance.trusted_says(fold(leak.secret)) else leaked).append(f"{key}: {leak.kind} "
                                                                                           f"{leak.excerpt}")
            words = set(key.lower().replace("-", "_").split("_"))
            if blob is None and not words & _CONTENT_KEYS:
                if found := blobs(text):
                    blob = (f"{key}: {found[0].kind}, {found[0].excerpt}", bool(words & _URL_KEYS) or key == "url")
            if egress:
                folded = fold(text)
                for value in _values(folded):
                    given = value.value in state.provenance.trusted_values
                    if value.kind in ("card", "iban") and not given and not ("card" in words and "payment"
                                                                            in call.profile.categories):
                        personal.append(f"{key}: {value.kind} …{value.value[-4:]}")
        if leaked or own:
            severity: Severity = "high" if leaked else "medium"
            whose = "" if leaked else " (the user supplied it)"
            call.findings.append(self._finding(call, "secret_egress", severity, 0.9 if leaked else 0.5,
                                               f"credentials leave in the arguments of {call.name!r}{whose}",
                                               tuple((leaked or own)[:4])))
        if personal:
            # to a recipient that untrusted content supplied, it is exfiltration
            outward = any(f.rule.endswith((".instructed_value", ".tainted_value")) for f in call.findings)
            to = " to a destination from untrusted content" if outward else ""
            call.findings.append(self._finding(call, "personal_data_egress", "high" if outward else "medium",
                                               0.85 if outward else 0.6, f"{call.profile.describe() or call.name} "
                                               f"sends card or bank numbers that the user did not give{to}",
                                               tuple(personal[:4])))
        if blob is not None:
            in_url = blob[1]
            call.findings.append(self._finding(call, "encoded_blob", "high" if in_url else "medium",
                                               0.8 if in_url else 0.45,
                                               f"encoded data {'smuggled into a URL' if in_url else 'sent'} by "
                                               f"{call.name!r}", (blob[0],)))

    def _arguments(self, call: _Call) -> None:
        executes = "execute" in call.profile.categories
        best: dict[str, Finding] = {}
        for key, text in call.leaves:
            for hit in dangerous(key, text, executes):
                known = best.get(hit.rule)
                if known is None or SEVERITY_RANK[hit.severity] > SEVERITY_RANK[known.severity]:
                    best[hit.rule] = self._finding(call, hit.rule, hit.severity, hit.score, hit.reason,
                                                   (hit.evidence,))
        call.findings.extend(best.values())

    def _finding(self, call: _Call, rule: str, severity: Severity, score: float, reason: str,
                 evidence: tuple[str, ...]) -> Finding:
        high = SEVERITY_RANK[severity] >= SEVERITY_RANK["high"]
        action = "block" if high else "alert" if severity == "medium" else "allow"
        return Finding(rule=f"detect.{self.name}.{rule}", action=action, severity=severity, score=min(1.0, score),
                       reason=f"{call.name} ({call.channel}): {reason}", evidence=tuple(e[:240] for e in evidence),
                       source="detector")


def _leaves(node: Any, key: str = "", depth: int = 0) -> Iterator[tuple[str, str]]:
    """(key, string) for every string or number in the arguments, depth-first, bounded in count and size."""
    count = chars = 0
    stack: list[tuple[str, Any, int]] = [(key, node, depth)]
    while stack and count < MAX_LEAVES and chars < MAX_CALL_CHARS:
        key, node, depth = stack.pop()
        if isinstance(node, str):
            count += 1
            chars += min(len(node), MAX_LEAF_CHARS)
            yield key, node[:MAX_LEAF_CHARS]
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, int | float):
            count += 1
            yield key, repr(node)
        elif depth < 32 and isinstance(node, dict):
            stack.extend((str(k), v, depth + 1) for k, v in reversed(list(islice(node.items(), MAX_LEAVES))))
        elif depth < 32 and isinstance(node, list | tuple):
            stack.extend((key, v, depth + 1) for v in reversed(node[:MAX_LEAVES]))


def _values(folded: str) -> list[Value]:
    return extract(folded, scanned=True)


def _copied(key: str, folded: str, provenance: Provenance) -> tuple[str, str] | None:
    """The instruction a sink's argument was copied from: whole values of ids and names, phrases of text."""
    if len(folded) < 2 or len(folded) > 2000:
        return None
    idlike = " " not in folded and key.lower().endswith(_ID_KEY_SUFFIXES)
    if idlike:
        return None if provenance.trusted_word(folded) else provenance.instructed(folded, word=True)
    if len(folded) < 8 or " " not in folded or provenance.trusted_says(folded):
        return None
    return provenance.instructed(folded, word=True)


def _user_named(call: _Call, provenance: Provenance) -> bool:
    """Whether an argument of the call is a name the user wrote ("reserve 'Le Marais'"): their target."""
    return any(len(folded := fold(text)) >= 4 and not folded.isdigit() and provenance.trusted_says(folded)
               for _, text in call.leaves)


def _trace(key: str, value: str, origin: Origin) -> str:
    return f"{key}={value} ← {origin.source}: “{origin.excerpt}”"


def _what(profile: SinkProfile) -> str:
    return profile.describe() if profile.is_sink else "the call"
