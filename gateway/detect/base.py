"""The detector interface: every detector sees the same normalised events, in session order.

A detector is a small object with three hooks, each returning findings (``gateway.findings.Finding``,
``source="detector"``). Findings carry the rule id, severity, score and evidence; the policy, not the
detector, decides the action, so detectors set ``action`` to what they would recommend and the pipeline
overrides it from the policy (``alert``/``block``, shadow mode, suppressions). State that must persist
across a session's events (values seen in untrusted content, the last tools called) lives in the
``SessionContext``, under the detector's own name, so that detectors never share mutable state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.events import RequestEvent, ResponseEvent, ToolCall
from gateway.findings import Finding

__all__ = ["Detector", "SessionContext"]


@dataclass
class SessionContext:
    """Everything detectors remember about one agent session; ``state`` maps a detector's name to its own."""

    agent: str
    session: str
    state: dict[str, Any] = field(default_factory=dict)

    def of(self, detector: str, factory: type | None = None) -> Any:
        """The detector's state, created with ``factory()`` on first use."""
        if detector not in self.state and factory is not None:
            self.state[detector] = factory()
        return self.state.get(detector)


class Detector(Protocol):
    """One family of rules; ``name`` prefixes its rule ids (``detect.<name>.<rule>``)."""

    name: str

    def on_request(self, event: RequestEvent, context: SessionContext) -> list[Finding]:
        """An agent's request: its tool results and messages are content entering the model; an MCP
        ``tools/call`` or a plain HTTP call is a tool call about to run."""
        ...

    def on_response(self, event: ResponseEvent, request: RequestEvent, context: SessionContext) -> list[Finding]:
        """What came back: MCP tool results and listings (untrusted content), a model's answer."""
        ...

    def on_tool_call(self, call: ToolCall, request: RequestEvent, context: SessionContext) -> list[Finding]:
        """A tool call a model proposed (from a response, or held mid-stream until complete)."""
        ...
