"""A recorded agent conversation (OpenAI chat format) as the events the proxy would produce, in order.

Evaluations and benchmarks replay labelled traces (AgentDojo's, or the audit log's) through detectors
without a proxy or a model: the first request carries the user's message, every assistant tool call is
a proposed call (``on_tool_call``) and every batch of tool results is the next request, carrying the
whole conversation so far, as a chat client resends it. Labels travel with the events: a call the
attacker wanted is ``malicious``, a request whose newest tool result carries an injection is
``injected``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gateway.events import Message, RequestEvent, ResponseEvent, ToolCall, ToolResult, ToolSpec
from gateway.findings import Finding

if TYPE_CHECKING:
    from gateway.detect.pipeline import DetectionPipeline

__all__ = ["AGENTDOJO", "Step", "judge", "load_traces", "nearest", "replay", "tool_specs"]

AGENTDOJO = "shared/datasets/agent/agentdojo-v1.2.2-workspace-travel.jsonl.gz"
"""The development traces, relative to the folder that holds the checkout (see ``nearest``)."""


@dataclass(frozen=True, slots=True)
class Step:
    """One event to judge: a request (``call`` None) or a proposed tool call with the request it answers."""

    kind: Literal["request", "tool_call"]
    request: RequestEvent
    call: ToolCall | None = None
    response: ResponseEvent | None = None
    malicious: bool = False
    """A tool call the attacker wanted."""
    injected: bool = False
    """A request whose new tool results carry an injected instruction."""


def nearest(relative: str, start: Path | None = None) -> Path:
    """``relative`` under the nearest folder above ``start`` (this file) that has it; else where it would be
    beside a main checkout. Worktrees sit a level deeper than the main checkout, so the level varies."""
    here = (start or Path(__file__)).resolve()
    return next((p / relative for p in here.parents if (p / relative).exists()), here.parents[3] / relative)


def load_traces(path: Path) -> Iterator[dict[str, Any]]:
    """Traces from a JSON-lines file, gzipped or not."""
    with gzip.open(path, "rt") if path.suffix == ".gz" else path.open() as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def tool_specs(tools: list[Mapping[str, Any]]) -> tuple[ToolSpec, ...]:
    """OpenAI ``tools`` entries as ToolSpecs."""
    specs = []
    for tool in tools:
        function = tool.get("function", tool)
        specs.append(ToolSpec(name=function["name"], description=function.get("description") or "",
                              input_schema=function.get("parameters") or {}))
    return tuple(specs)


def replay(trace: Mapping[str, Any], *, agent: str, session: str) -> Iterator[Step]:
    """The steps of one trace (``messages`` with optional ``label``s, and ``tools``)."""
    tools = tool_specs(trace.get("tools") or [])
    messages: list[Message] = []
    results: list[ToolResult] = []
    names: dict[str, str] = {}
    pending = injected = False
    counter = 0

    def request() -> RequestEvent:
        nonlocal counter
        counter += 1
        system = "\n\n".join(m.text for m in messages if m.role == "system")
        return RequestEvent(request_id=f"{session}-{counter}", agent=agent, session=session, protocol="openai.chat",
                            direction="reverse", method="POST", scheme="https", host="engine", port=443,
                            path="/v1/chat/completions", model=trace.get("model") or "model", system=system,
                            messages=tuple(m for m in messages if m.role != "system"), tools=tools,
                            tool_results=tuple(results))

    current: RequestEvent | None = None
    for raw in trace["messages"]:
        role, label = raw["role"], raw.get("label") or {}
        text = _text(raw.get("content"))
        if role == "tool":
            call_id = raw.get("tool_call_id")
            messages.append(Message(role="tool", text=text, tool_call_id=call_id))
            results.append(ToolResult(tool_call_id=call_id, name=raw.get("name") or names.get(call_id or ""),
                                      content=text))
            pending, injected = True, injected or bool(label.get("injected"))
            continue
        if role != "assistant":
            messages.append(Message(role=role, text=text))
            pending = True
            continue
        if pending or current is None:
            current = request()
            yield Step("request", current, injected=injected)
            pending = injected = False
        calls = tuple(_call(c) for c in raw.get("tool_calls") or [])
        names.update((c.id, c.name) for c in calls if c.id)
        response = ResponseEvent(request_id=current.request_id, protocol="openai.chat", status=200, text=text,
                                 tool_calls=calls, finish_reason="tool_calls" if calls else "stop")
        for call in calls:
            yield Step("tool_call", current, call, response, malicious=bool(label.get("malicious")))
        messages.append(Message(role="assistant", text="\n".join([text, *(f"[tool_call: {c.name}]" for c in calls)])
                                .strip()))
    if pending:
        yield Step("request", request(), injected=injected)


def judge(pipeline: DetectionPipeline, trace: Mapping[str, Any], *, agent: str,
          session: str) -> Iterator[tuple[Step, list[Finding]]]:
    """Each step of a trace with the findings the pipeline returned for it, in order (a proposed call is
    judged after its response, as the proxy sees them)."""
    for step in replay(trace, agent=agent, session=session):
        if step.call is None or step.response is None:
            yield step, pipeline.on_request(step.request)
        else:
            yield step, pipeline.on_response(step.response, step.request) + pipeline.on_tool_call(step.call,
                                                                                               step.request)


def _call(raw: Mapping[str, Any]) -> ToolCall:
    function = raw.get("function") or {}
    arguments_raw = function.get("arguments") or ""
    if not isinstance(arguments_raw, str):
        arguments_raw = json.dumps(arguments_raw)
    try:
        arguments, valid = json.loads(arguments_raw) if arguments_raw else {}, True
    except json.JSONDecodeError:
        arguments, valid = None, False
    return ToolCall(id=raw.get("id"), name=function.get("name") or "", arguments_raw=arguments_raw,
                    arguments=arguments, valid_json=valid)


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return str(content)
