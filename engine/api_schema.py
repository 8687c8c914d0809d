"""The OpenAI wire format the server speaks: request models in, response dictionaries out.

Requests are parsed as strict JSON (no ``"5"`` for 5, no NaN) into frozen pydantic models; fields the
server does not know are ignored, as OpenAI does, so that clients sending newer options keep working.
Values the engine cannot honour (``n`` above ``MAX_N``, a ``json_schema`` response format) are refused
with the field named, never silently dropped.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.sampling_params import MAX_STOP_STRINGS, SamplingParams

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "MAX_N",
    "ChatCompletionRequest",
    "CompletionRequest",
    "FunctionCall",
    "FunctionDef",
    "Message",
    "NamedToolChoice",
    "ResponseFormat",
    "StreamOptions",
    "TextPart",
    "Tool",
    "ToolCall",
    "chunk",
    "completion_id",
    "envelope",
    "usage",
]

MAX_N = 8
"""Choices per request: each one is a sequence in a KV slot, so ``n`` is capped like the slots are."""

MAX_TOOLS = 64

DEFAULT_MAX_TOKENS = 256
"""For chat requests that set no limit; the context window still ends a completion that runs longer."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class TextPart(_Wire):
    type: Literal["text"]
    text: str


class FunctionCall(_Wire):
    name: str
    arguments: str
    """JSON text, as OpenAI sends it."""


class ToolCall(_Wire):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(_Wire):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    """Calls an earlier assistant turn made."""
    tool_call_id: str | None = None
    """On a ``tool`` message: the call whose result this is."""

    @model_validator(mode="after")
    def _shape(self) -> Message:
        if self.role == "tool" and self.tool_call_id is None:
            raise ValueError("a tool message needs tool_call_id")
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError(f"a {self.role} message needs content")
        return self

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class FunctionDef(_Wire):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    """A JSON schema for the arguments; a call whose arguments fail it is returned as text."""

    @field_validator("parameters")
    @classmethod
    def _schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON schema: {exc.message}") from None
        return value


class Tool(_Wire):
    type: Literal["function"]
    function: FunctionDef


class _ChoiceName(_Wire):
    name: str


class NamedToolChoice(_Wire):
    type: Literal["function"]
    function: _ChoiceName


class StreamOptions(_Wire):
    include_usage: bool = False


class ResponseFormat(_Wire):
    type: Literal["text", "json_object"]


_StopList = Annotated[list[Annotated[str, Field(min_length=1)]], Field(max_length=MAX_STOP_STRINGS)]


class _Sampling(_Wire):
    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = None
    n: int = Field(1, ge=1, le=MAX_N)
    stop: str | _StopList | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    def sampling_params(self, index: int, *, max_tokens: int | None, logprobs: bool,
                        top_logprobs: int = 0) -> SamplingParams:
        """Choice ``index``'s parameters; seeded choices get ``seed + index`` so that n > 1 differ."""
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        return SamplingParams(
            max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=None if self.seed is None else self.seed + index,
            stop=stop,
            logprobs=logprobs,
            top_logprobs=top_logprobs,
        )


class ChatCompletionRequest(_Sampling):
    messages: list[Message] = Field(min_length=1)
    tools: list[Tool] | None = Field(None, max_length=MAX_TOOLS)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool = True
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    """The most likely tokens to list at each position; needs ``logprobs``, as in OpenAI's API."""
    max_completion_tokens: int | None = Field(None, ge=1)
    response_format: ResponseFormat | None = None

    @model_validator(mode="after")
    def _choice(self) -> ChatCompletionRequest:
        if isinstance(self.tool_choice, NamedToolChoice):
            names = {t.function.name for t in self.tools or ()}
            if self.tool_choice.function.name not in names:
                raise ValueError(f"tool_choice names {self.tool_choice.function.name!r}, which is not in tools")
        elif self.tool_choice == "required" and not self.tools:
            raise ValueError("tool_choice 'required' needs tools")
        if self.top_logprobs and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs: true")
        return self

    @property
    def active_tools(self) -> list[Tool]:
        """The tools the model is offered: none when ``tool_choice`` is ``none``."""
        return [] if self.tool_choice == "none" else list(self.tools or ())

    @property
    def json_mode(self) -> bool:
        return self.response_format is not None and self.response_format.type == "json_object"

    def params(self, index: int) -> SamplingParams:
        return self.sampling_params(index, max_tokens=self.max_completion_tokens or self.max_tokens,
                                    logprobs=self.logprobs, top_logprobs=self.top_logprobs or 0)


class CompletionRequest(_Sampling):
    prompt: str | Annotated[list[str], Field(min_length=1, max_length=MAX_N)]
    logprobs: int | None = Field(None, ge=0, le=5)
    """Legacy completions: the chosen tokens' logprobs, and this many most likely tokens at each position."""
    max_tokens: int | None = Field(16, ge=1)
    """16 is the legacy endpoint's default."""

    @property
    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    def params(self, index: int) -> SamplingParams:
        return self.sampling_params(index, max_tokens=self.max_tokens, logprobs=self.logprobs is not None,
                                    top_logprobs=self.logprobs or 0)


def completion_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def envelope(object_id: str, kind: str, model: str, choices: list[dict[str, Any]],
             usage: dict[str, int] | None = None) -> dict[str, Any]:
    """The fields every completion object and chunk share."""
    body: dict[str, Any] = {"id": object_id, "object": kind, "created": int(time.time()), "model": model,
                            "choices": choices}
    if usage is not None:
        body["usage"] = usage
    return body


def chunk(object_id: str, model: str, index: int, delta: dict[str, Any], finish_reason: str | None = None,
          logprobs: dict[str, Any] | None = None) -> dict[str, Any]:
    choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}
    return envelope(object_id, "chat.completion.chunk", model, [choice])


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}

