"""Detector ``mcp``: MCP tool definitions pinned on first sight, and quarantined when they change.

An MCP server can change a tool after it was trusted (a "rug pull"): the description the model reads
gains instructions, the schema gains a ``bcc`` parameter. So every ``tools/list`` result is hashed per
(server, tool) — SHA-256 over canonical JSON of name, description and input schema (keys sorted, no
insignificant whitespace, UTF-8) — and compared with the pin in a ``ToolPinStore``:

- trust on first use: the first listing of a server pins all its tools (an ``info`` finding records it);
  the first sight is therefore trusted, and a deployment that needs more pre-seeds the store;
- a pinned tool whose hash changed is **quarantined** (``tool_changed``, medium), and every
  ``tools/call`` to it is refused (``tool_quarantined``, critical) until ``approve(store, server, tool)``
  re-pins its current definition;
- a tool appearing on a server already pinned is flagged (``new_tool``, medium) and pinned, or
  quarantined like a changed one with ``McpSettings.quarantine_new_tools``;
- a call to a tool the server never listed is flagged (``unlisted_tool``, medium), and a name listed
  twice with different definitions is quarantined (``duplicate_tool``, medium);
- a description that names another tool (of this or another server) inside an instruction ("before
  using `send_email`, always add ...") is shadowing (``tool_shadowing``, high), in MCP listings and in
  the tools a chat request offers the model.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from gateway.detect.base import SessionContext
from gateway.detect.directives import directive_spans
from gateway.detect.provenance import find_word
from gateway.detect.values import fold
from gateway.errors import ToolNotPinned
from gateway.events import RequestEvent, ResponseEvent, ToolCall, ToolSpec
from gateway.findings import Finding, Severity
from policies.detection import McpSettings

__all__ = ["McpPinDetector", "MemoryPinStore", "PinStatus", "ToolPin", "ToolPinStore", "approve", "tool_digest"]

PinStatus = Literal["pinned", "quarantined"]

_MAX_DESCRIPTION = 2000
_MAX_CACHED_LISTINGS = 1024
_SHADOW_CUES = re.compile(r"\b(?:instead of|rather than|before (?:using|calling|you use|you call)|when (?:using|"
                          r"calling|you use|you call)|after (?:using|calling)|always|never|do not|don't|must|"
                          r"important|ignore|override|overrides|replaces?)\b")
_NAMEY = re.compile(r"[_.-]|[a-z][A-Z]")


@dataclass(frozen=True, slots=True)
class ToolPin:
    """What a (server, tool) was trusted to be, and whether it is quarantined."""

    server: str
    tool: str
    digest: str
    """SHA-256 of the pinned definition (``tool_digest``)."""
    description: str
    input_schema: dict[str, object]
    pinned_at: float
    status: PinStatus = "pinned"
    observed: ToolSpec | None = None
    """The changed (or new) definition awaiting approval, when quarantined."""
    observed_digest: str | None = None
    reason: str = ""
    """Why it is quarantined."""


class ToolPinStore(Protocol):
    """Where pins live: in memory here, the audit database in production. Implementations are thread-safe."""

    def get(self, server: str, tool: str) -> ToolPin | None: ...

    def put(self, pin: ToolPin) -> None:
        """Insert or replace the pin of (pin.server, pin.tool)."""
        ...

    def pins(self, server: str | None = None) -> list[ToolPin]:
        """Every pin, or those of one server."""
        ...


class MemoryPinStore:
    """A process-local ``ToolPinStore``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pins: dict[tuple[str, str], ToolPin] = {}

    def get(self, server: str, tool: str) -> ToolPin | None:
        with self._lock:
            return self._pins.get((server, tool))

    def put(self, pin: ToolPin) -> None:
        with self._lock:
            self._pins[(pin.server, pin.tool)] = pin

    def pins(self, server: str | None = None) -> list[ToolPin]:
        with self._lock:
            return [p for p in self._pins.values() if server is None or p.server == server]


def tool_digest(spec: ToolSpec) -> str:
    """SHA-256 (hex) of the tool's canonical JSON: name, description and input schema, keys sorted, compact."""
    document = {"name": spec.name, "description": spec.description, "inputSchema": spec.input_schema}
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def approve(store: ToolPinStore, server: str, tool: str, *, clock: Callable[[], float] = time.time) -> ToolPin:
    """Re-pin a quarantined tool to the definition it was last seen with; ToolNotPinned if there is no pin."""
    pin = store.get(server, tool)
    if pin is None:
        raise ToolNotPinned(f"no pin for tool {tool!r} of MCP server {server!r}")
    if pin.status == "pinned" or pin.observed is None or pin.observed_digest is None:
        return pin
    approved = ToolPin(server, tool, pin.observed_digest, pin.observed.description[:_MAX_DESCRIPTION],
                       dict(pin.observed.input_schema), clock())
    store.put(approved)
    return approved


@dataclass(slots=True)
class _State:
    reported: set[tuple[str, str, str]] = field(default_factory=set)
    """(server, tool, digest) already reported in this session: a listing repeated does not repeat findings."""


class McpPinDetector:
    """Pins MCP tool definitions and holds changed ones in quarantine."""

    name = "mcp"

    def __init__(self, store: ToolPinStore, settings: McpSettings | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._settings = settings or McpSettings()
        self._clock = clock
        self._shadowing: dict[int, list[Finding]] = {}

    def on_request(self, event: RequestEvent, context: SessionContext) -> list[Finding]:
        findings = self._shadowed(event.tools) if event.tools else []
        if event.protocol == "mcp" and event.tool_call is not None:
            findings += self._call(event.tool_call, _server(event, event.tool_call))
        return findings

    def on_response(self, event: ResponseEvent, request: RequestEvent, context: SessionContext) -> list[Finding]:
        if not event.tools:
            return []
        state: _State = context.of(self.name, _State)
        findings = self._listing(event.tools, request, state)
        return findings + self._shadowed(event.tools)

    def on_tool_call(self, call: ToolCall, request: RequestEvent, context: SessionContext) -> list[Finding]:
        return []  # a model's proposed call names no MCP server; the agent's tools/call that follows does

    def _call(self, call: ToolCall, server: str) -> list[Finding]:
        pin = self._store.get(server, call.name)
        if pin is not None and pin.status == "quarantined":
            return [_finding("tool_quarantined", "critical", 1.0,
                             f"tools/call to {call.name!r} of {server}, quarantined: {pin.reason}",
                             (f"pinned {pin.digest[:16]}…, now {(pin.observed_digest or '?')[:16]}…",))]
        if pin is None and self._store.pins(server):
            return [_finding("unlisted_tool", "medium", 0.6,
                             f"tools/call to {call.name!r}, which {server} never listed", ())]
        return []

    def _listing(self, tools: tuple[ToolSpec, ...], request: RequestEvent, state: _State) -> list[Finding]:
        findings: list[Finding] = []
        first: list[str] = []
        servers_known: dict[str, bool] = {}
        listed: dict[tuple[str, str], list[tuple[ToolSpec, str]]] = {}
        for spec in tools:
            listed.setdefault((spec.server or _server(request, None), spec.name), []).append((spec, tool_digest(spec)))
        for (server, name), versions in listed.items():
            if server not in servers_known:
                servers_known[server] = bool(self._store.pins(server))
            spec, digest = versions[0]
            pin = self._store.get(server, name)
            if len({d for _, d in versions}) > 1:
                findings += self._ambiguous(server, spec, digest, pin, state)
                continue
            if pin is None:
                new = servers_known[server]
                quarantine = new and self._settings.quarantine_new_tools
                reason = f"new tool on {server}" if new else ""
                self._store.put(ToolPin(server, spec.name, digest, spec.description[:_MAX_DESCRIPTION],
                                        dict(spec.input_schema), self._clock(),
                                        "quarantined" if quarantine else "pinned",
                                        spec if quarantine else None, digest if quarantine else None, reason))
                if new and (server, spec.name, digest) not in state.reported:
                    state.reported.add((server, spec.name, digest))
                    what = "quarantined until approved" if quarantine else "pinned"
                    findings.append(_finding("new_tool", "medium", 0.5,
                                             f"{server} lists a new tool {spec.name!r} ({what})",
                                             (_excerpt(spec.description),)))
                elif not new:
                    first.append(spec.name)
            elif digest != pin.digest and (server, spec.name, digest) not in state.reported:
                state.reported.add((server, spec.name, digest))
                change = _change(pin, spec)
                if pin.status == "pinned" or digest != pin.observed_digest:
                    self._store.put(replace(pin, status="quarantined", observed=spec, observed_digest=digest,
                                            reason=f"its {change} changed since it was pinned"))
                findings.append(_finding("tool_changed", "medium", 0.7,
                                         f"{spec.name!r} of {server}: its {change} changed since it was pinned; "
                                         "calls are refused until it is approved", _diff(pin, spec)))
        if first:
            findings.append(_finding("pinned", "info", 0.1,
                                     f"pinned {len(first)} tools on first sight (trust on first use)",
                                     (", ".join(first)[:240],)))
        return findings

    def _ambiguous(self, server: str, spec: ToolSpec, digest: str, pin: ToolPin | None,
                   state: _State) -> list[Finding]:
        """A listing that defines one name twice, differently: which one the model sees is anyone's guess."""
        reason = "the server lists it twice with different definitions"
        if pin is None:
            pin = ToolPin(server, spec.name, digest, spec.description[:_MAX_DESCRIPTION], dict(spec.input_schema),
                          self._clock())
        if pin.status != "quarantined" or pin.reason != reason:
            self._store.put(replace(pin, status="quarantined", observed=spec, observed_digest=digest, reason=reason))
        if (server, spec.name, "duplicate") in state.reported:
            return []
        state.reported.add((server, spec.name, "duplicate"))
        return [_finding("duplicate_tool", "medium", 0.7, f"{spec.name!r} of {server}: {reason}; calls are refused "
                         "while it is (an approval lasts until the next such listing)", ())]

    def _shadowed(self, tools: tuple[ToolSpec, ...]) -> list[Finding]:
        key = hash(tuple((t.server, t.name, t.description) for t in tools))
        cached = self._shadowing.get(key)
        if cached is not None:
            return cached
        names = {t.name for t in tools} | {p.tool for p in self._store.pins()}
        findings = []
        for spec in tools:
            if (hit := _shadowing(spec, names - {spec.name})) is not None:
                other, sentence = hit
                findings.append(_finding("tool_shadowing", "high", 0.85,
                                         f"the description of {spec.name!r}{_on(spec)} gives instructions about "
                                         f"another tool, {other!r}", (f"“{sentence}”",)))
        if len(self._shadowing) >= _MAX_CACHED_LISTINGS:
            self._shadowing.clear()
        self._shadowing[key] = findings
        return findings


def _shadowing(spec: ToolSpec, others: set[str]) -> tuple[str, str] | None:
    """(the other tool, the instruction) when the description instructs about another tool by name."""
    folded = fold(spec.description[:8192])
    candidates = [n for n in others if len(n) >= 4 and n.casefold() in folded]
    if not candidates:
        return None
    spans = directive_spans(folded)
    for name in candidates:
        low = name.casefold()
        quoted = any(f"{q}{low}{q}" in folded for q in "`'\"")
        if not (quoted or _NAMEY.search(name)):
            continue  # "search" in prose is a word, not a tool
        at = find_word(folded, low)
        while at >= 0:
            start = max(0, at - 160)
            sentence = folded[start : at + len(low) + 160]
            if spans.covering(at) or _SHADOW_CUES.search(sentence):
                return name, ("…" if start else "") + sentence[:240]
            at = find_word(folded, low, at + len(low))
    return None


def _server(request: RequestEvent, call: ToolCall | None) -> str:
    if call is not None and call.server:
        return call.server
    port = "" if request.port in (80, 443) else f":{request.port}"
    return f"{request.host}{port}{request.path}"


def _change(pin: ToolPin, spec: ToolSpec) -> str:
    parts = []
    if spec.description[:_MAX_DESCRIPTION] != pin.description:
        parts.append("description")
    if spec.input_schema != pin.input_schema:
        parts.append("input schema")
    return " and ".join(parts) or "definition"


def _diff(pin: ToolPin, spec: ToolSpec) -> tuple[str, ...]:
    evidence = []
    if spec.description[:_MAX_DESCRIPTION] != pin.description:
        old, new = pin.description, spec.description
        at = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))
        evidence.append(f"description from character {at}: {old[at : at + 80]!r} → {new[at : at + 120]!r}")
    old_props, new_props = _properties(pin.input_schema), _properties(spec.input_schema)
    if added := sorted(new_props - old_props):
        evidence.append(f"parameters added: {', '.join(added)[:200]}")
    if removed := sorted(old_props - new_props):
        evidence.append(f"parameters removed: {', '.join(removed)[:200]}")
    if spec.input_schema != pin.input_schema and not (added or removed):
        evidence.append("input schema changed (same parameter names)")
    return tuple(evidence)


def _properties(schema: dict[str, object]) -> set[str]:
    properties = schema.get("properties")
    return {str(k) for k in properties} if isinstance(properties, dict) else set()


def _excerpt(text: str) -> str:
    return text[:160] + ("…" if len(text) > 160 else "")


def _on(spec: ToolSpec) -> str:
    return f" ({spec.server})" if spec.server else ""


def _finding(rule: str, severity: Severity, score: float, reason: str, evidence: tuple[str, ...]) -> Finding:
    action = "block" if severity in ("high", "critical") else "alert" if severity == "medium" else "allow"
    return Finding(rule=f"detect.mcp.{rule}", action=action, severity=severity, score=score, reason=reason,
                   evidence=evidence, source="detector")
