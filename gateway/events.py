"""One event model for every protocol the gateway understands, shared by policy, detection and the audit log.

OpenAI chat and completions, Anthropic messages, MCP JSON-RPC and plain HTTP calls are normalised into a
``RequestEvent`` (what the agent sent) and a ``ResponseEvent`` (what came back), so that a rule or a
detector is written once: "a tool call" is the same object whether a model proposed it in an OpenAI
response, an Anthropic ``tool_use`` block or an agent sent it as MCP ``tools/call``; "untrusted content"
is a tool result whether it comes back in the next chat request or in an MCP result.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Direction",
    "Message",
    "Protocol",
    "RequestEvent",
    "ResponseEvent",
    "ToolCall",
    "ToolResult",
    "ToolSpec",
    "Usage",
]

Protocol = Literal["openai.chat", "openai.completions", "anthropic.messages", "mcp", "http"]
Direction = Literal["reverse", "forward"]
"""reverse: an agent calling the gateway's LLM front door; forward: an agent's outbound call through the proxy."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Message(_Frozen):
    """One chat message, its content flattened to text (images and other parts are named, not inlined)."""

    role: str
    text: str = ""
    name: str | None = None
    tool_call_id: str | None = None
    """For a tool-result message: the call it answers."""


class ToolCall(_Frozen):
    """A call of a tool, proposed by a model or sent by an agent (MCP ``tools/call``)."""

    id: str | None = None
    name: str
    arguments_raw: str = ""
    """The arguments exactly as sent (a JSON text)."""
    arguments: Any = None
    """The arguments parsed; None when ``arguments_raw`` is not valid JSON."""
    valid_json: bool = True
    server: str | None = None
    """For MCP: the server (host[:port]/path) the call goes to."""


class ToolResult(_Frozen):
    """What a tool returned: untrusted content that enters the model."""

    tool_call_id: str | None = None
    name: str | None = None
    content: str = ""
    is_error: bool = False


class ToolSpec(_Frozen):
    """A tool as declared to a model (``tools`` in a chat request) or listed by an MCP server."""

    name: str
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=dict)
    server: str | None = None


class Usage(_Frozen):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class RequestEvent(_Frozen):
    """What an agent sent, normalised."""

    request_id: str
    agent: str
    session: str
    protocol: Protocol
    direction: Direction
    method: str
    scheme: str
    host: str
    port: int
    path: str
    body_size: int = 0

    model: str | None = None
    stream: bool = False
    max_tokens: int | None = None
    system: str = ""
    messages: tuple[Message, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    """Tools offered to the model in this request."""
    tool_results: tuple[ToolResult, ...] = ()
    """Tool results carried in this request's conversation (the newest last)."""

    mcp_method: str | None = None
    mcp_id: str | int | None = None
    tool_call: ToolCall | None = None
    """MCP ``tools/call``: the call the agent is making."""

    parse_error: str | None = None
    """Why the body could not be understood (it is then judged as opaque HTTP)."""


class ResponseEvent(_Frozen):
    """What came back, normalised; for a stream, after it was reassembled."""

    request_id: str
    protocol: Protocol
    status: int
    body_size: int = 0
    text: str = ""
    """The model's answer, or the MCP/HTTP body as text where that is meaningful."""
    tool_calls: tuple[ToolCall, ...] = ()
    """Tool calls the model proposed."""
    tool_result: ToolResult | None = None
    """MCP ``tools/call`` result: untrusted content for the model."""
    tools: tuple[ToolSpec, ...] = ()
    """MCP ``tools/list`` result."""
    usage: Usage | None = None
    finish_reason: str | None = None
    error: str | None = None
    """The upstream's error message, when it answered with one."""
    parse_error: str | None = None
    """Why the body could not be understood (it is then judged as opaque)."""
