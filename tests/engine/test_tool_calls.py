"""Tool calls: only strict, known, schema-valid calls come back as calls; everything else stays text."""

from __future__ import annotations

import json

import pytest

from engine.api_schema import ChatCompletionRequest, Tool
from engine.chat_template import ChatTemplate
from engine.tool_calls import TOOL_PROMPT, parse_tool_calls, prompt_messages, template_supports_tools
from tests.builders import CHATML_TEMPLATE

WEATHER = Tool.model_validate({"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string", "enum": ["c", "f"]}},
                   "required": ["city"], "additionalProperties": False}}})
TIME = Tool.model_validate({"type": "function", "function": {"name": "get_time"}})
TOOLS = [WEATHER, TIME]


def _call(text: str, **kwargs: object) -> tuple[str | None, list[tuple[str, dict[str, object]]]]:
    out = parse_tool_calls(text, TOOLS, **kwargs)  # type: ignore[arg-type]
    for call in out.calls:
        assert call.id.startswith("call_") and len(call.id) > 20
    return out.content, [(c.name, json.loads(c.arguments)) for c in out.calls]


def test_hermes_call_is_parsed() -> None:
    text = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n</tool_call>'
    assert _call(text) == (None, [("get_weather", {"city": "Paris", "unit": "c"})])


def test_parallel_and_unterminated_hermes_calls_with_surrounding_text() -> None:
    text = ('Let me check. <tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
            '<tool_call>{"name": "get_time", "arguments": {}}')
    assert _call(text) == ("Let me check.", [("get_weather", {"city": "Oslo"}), ("get_time", {})])
    assert _call(text, parallel=False)[1] == [("get_weather", {"city": "Oslo"})]


@pytest.mark.parametrize("text", [
    '{"name": "get_weather", "parameters": {"city": "Rome"}}',
    '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Rome"}}',
    '```json\n{"name": "get_weather", "arguments": "{\\"city\\": \\"Rome\\"}"}\n```',
])
def test_llama3_bare_json_calls(text: str) -> None:
    assert _call(text) == (None, [("get_weather", {"city": "Rome"})])


@pytest.mark.parametrize("text", [
    '<tool_call>{"name": "delete_everything", "arguments": {}}</tool_call>',  # unknown tool
    '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"</tool_call>',  # bad JSON
    '<tool_call>{"name": "get_weather", "arguments": {"city": NaN}}</tool_call>',  # not strict JSON
    '<tool_call>{"name": "get_weather", "arguments": {"city": "A", "city": "B"}}</tool_call>',  # duplicate key
    '<tool_call>{"name": "get_weather", "arguments": {"unit": "c"}}</tool_call>',  # missing required
    '<tool_call>{"name": "get_weather", "arguments": {"city": 3}}</tool_call>',  # wrong type
    '<tool_call>{"name": "get_weather", "arguments": {"city": "X", "unit": "k"}}</tool_call>',  # not in enum
    '<tool_call>{"name": "get_weather", "arguments": {"city": "X", "extra": 1}}</tool_call>',  # extra property
    '<tool_call>{"name": "get_weather", "arguments": [1]}</tool_call>',  # arguments not an object
    '<tool_call>{"name": "get_time"}</tool_call><tool_call>oops</tool_call>',  # one bad call spoils all
    '{"name": "get_weather"} and then some words',  # JSON followed by prose is prose
    "The weather in Paris is sunny.",
])
def test_anything_but_a_valid_call_is_text(text: str) -> None:
    assert _call(text) == (text, [])


def test_named_tool_choice_only_accepts_that_tool() -> None:
    request = _request(tool_choice={"type": "function", "function": {"name": "get_time"}})
    text = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
    assert _call(text, tool_choice=request.tool_choice) == (text, [])


def _request(**fields: object) -> ChatCompletionRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": [t.model_dump(exclude_none=True) for t in TOOLS]} | fields
    return ChatCompletionRequest.model_validate_json(json.dumps(body))


def test_templates_without_tools_get_a_system_section_and_hermes_history() -> None:
    request = _request(messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ], tool_choice="required")
    messages, tools = prompt_messages(request, native=False)
    assert tools is None and not template_supports_tools(CHATML_TEMPLATE)
    assert messages[0]["content"].startswith("Be brief.\n\n" + TOOL_PROMPT.split("{tools}")[0])
    assert '"name": "get_weather"' in messages[0]["content"] and "must call" in messages[0]["content"]
    call = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    assert messages[2]["content"] == f"<tool_call>\n{call}\n</tool_call>"
    assert messages[3] == {"role": "user", "content": "<tool_response>\nsunny\n</tool_response>"}
    rendered = ChatTemplate(CHATML_TEMPLATE).render(messages)
    assert not any(s.trusted and "get_weather" in s.text for s in rendered.segments)  # tool text stays caller text


def test_tool_aware_templates_get_tools_as_data_and_none_gets_no_tools() -> None:
    template = ("{% for t in tools or [] %}{{ t['function']['name'] }};{% endfor %}"
                "{% for m in messages %}{{ m['role'] }}:{{ m['content'] }}\n{% endfor %}")
    assert template_supports_tools(template)
    messages, tools = prompt_messages(_request(), native=True)
    assert [t["function"]["name"] for t in tools or ()] == ["get_weather", "get_time"]
    assert ChatTemplate(template).render(messages, tools=tools).text == "get_weather;get_time;user:Weather in Paris?\n"
    assert prompt_messages(_request(tool_choice="none"), native=True) == (messages, None)


@pytest.mark.parametrize("fields", [
    {"tools": [{"type": "function", "function": {"name": "bad name!"}}]},
    {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "nonsense"}}}]},
    {"tool_choice": {"type": "function", "function": {"name": "missing"}}},
    {"tools": None, "tool_choice": "required"},
])
def test_invalid_tool_requests_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        _request(**fields)
