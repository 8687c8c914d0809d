"""Chat templates rendered in a bounded sandbox, with the caller's text kept apart from the template's.

A chat template ships inside the model artifact and turns messages into one prompt. It may be hostile
or just heavy, so it runs in Jinja's immutable sandbox with caps on its source, on the strings it builds
and on its output, under a line-by-line deadline that also stops loops that print nothing. And a user's
text must never turn into special tokens, so every string the caller passes in enters the template as a
tracked stand-in, and the prompt comes back as segments marked template-written or caller-written. A
second, plain render proves the tracking lost nothing; a transformation it cannot follow fails closed.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from types import FrameType
from typing import Any, NamedTuple, NoReturn

from jinja2 import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.errors import ChatTemplateError

__all__ = ["MAX_OUTPUT", "MAX_SOURCE", "TIME_LIMIT", "ChatTemplate", "RenderedPrompt", "Segment"]

MAX_SOURCE = 64 << 10
"""Real templates, tool-calling ones included, are a few KiB to a few tens of KiB."""

MAX_OUTPUT = 4 << 20
"""Cap on the rendered prompt and on every string the template builds on the way."""

TIME_LIMIT = 1.0
"""Seconds for both renders together; real templates take milliseconds."""

_OPEN, _CLOSE, _DIGIT0 = "\U000f0010", "\U000f0011", 0xF0000  # private-use plane 15: sentinels for caller text
_SENTINEL = re.compile(f"{_OPEN}([\U000f0000-\U000f000f]+){_CLOSE}")
_MARKERS = re.compile("[\U000f0000-\U000f0011]")
_PERCENT_WIDTH = re.compile(r"%[-#0 +]*(?:\*|\d{6,}|\d*\.(?:\*|\d{6,}))")
_BRACE_WIDTH = re.compile(r"\{[^{}]*\d{6,}[^{}]*\}")


class Segment(NamedTuple):
    text: str
    trusted: bool
    """True for text the template wrote; False for text that came from the caller."""


@dataclass(frozen=True)
class RenderedPrompt:
    """A rendered prompt; ``Tokenizer.encode_chat(prompt.segments)`` keeps caller text non-special."""

    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments)


class _Text(str):
    """A caller's string inside the template: it spells a sentinel, but acts on its real value."""

    _real: str
    _slots: list[str]

    def __new__(cls, slots: list[str], real: str) -> _Text:
        digits = "".join(chr(_DIGIT0 + int(d, 16)) for d in format(len(slots), "x"))
        self = super().__new__(cls, _OPEN + digits + _CLOSE)
        self._real, self._slots = real, slots
        slots.append(real)
        return self

    def __iter__(self) -> Any:
        return iter([_Text(self._slots, c) for c in self._real])


def _delegate(name: str) -> Callable[..., Any]:
    def method(self: _Text, *args: Any, **kwargs: Any) -> Any:
        real_args = [a._real if isinstance(a, _Text) else a for a in args]
        result = getattr(self._real, name)(*real_args, **kwargs)
        return _track(self._slots, result) if isinstance(result, str | list | tuple) else result

    method.__name__ = name
    return method


for _name in (
    "__getitem__ __len__ __contains__ __hash__ __eq__ __ne__ __lt__ __le__ __gt__ __ge__ strip lstrip rstrip split"
    " rsplit splitlines partition rpartition removeprefix removesuffix replace lower upper title capitalize casefold"
    " startswith endswith find rfind index rindex count isspace isdigit isalpha isalnum"
).split():
    setattr(_Text, _name, _delegate(_name))


def _track(slots: list[str], value: Any) -> Any:
    """Caller data with every string, keys included, replaced by a tracked stand-in."""
    if isinstance(value, str):
        return _Text(slots, value)
    if isinstance(value, Mapping):
        return {_track(slots, k): _track(slots, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_track(slots, v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    raise ChatTemplateError(f"chat template input of type {type(value).__name__} is not JSON-like data")


class _Budget:
    """The deadline and size cap of one render, enforced from a line tracer and the sandbox hooks."""

    def __init__(self, seconds: float, max_output: int) -> None:
        self.deadline = time.monotonic() + seconds
        self.max_output = max_output

    def trace(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        if time.monotonic() > self.deadline:
            raise ChatTemplateError("chat template ran past its time limit")
        return self.trace

    def size(self, n: int) -> None:
        if n > self.max_output:
            raise ChatTemplateError(f"chat template builds a string or sequence of {n:,} > {self.max_output:,}")


_BUDGET: ContextVar[_Budget] = ContextVar("chat_template_budget")
"""The running render's budget: one compiled template may render in several threads at once."""


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, plus size checks where a single C call could allocate without end."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(left, int | float) and isinstance(right, int | float):
            if abs(left) > 1 and right * math.log2(abs(left)) > 4096:
                raise ChatTemplateError("chat template computes a power that is too large")
        elif operator == "*" and isinstance(right, int) and hasattr(left, "__len__"):
            _BUDGET.get().size(len(left) * right)
        elif operator == "*" and isinstance(left, int) and hasattr(right, "__len__"):
            _BUDGET.get().size(len(right) * left)
        elif operator == "+" and hasattr(left, "__len__") and hasattr(right, "__len__"):
            _BUDGET.get().size(len(left) + len(right))
        elif operator == "%" and isinstance(left, str):
            _check_format(left, _PERCENT_WIDTH)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's signature)
        _check_sizes(args, kwargs)
        method = getattr(__obj, "__wrapped__", __obj)  # the sandbox hands out str.format wrapped
        if isinstance(owner := getattr(method, "__self__", None), str) and method.__name__ in {"format", "format_map"}:
            _check_format(owner, _BRACE_WIDTH)
        return super().call(__context, __obj, *args, **kwargs)

    def unsafe_undefined(self, obj: Any, attribute: str) -> NoReturn:
        """Jinja would return an undefined that fails only when used; a probe is refused at once."""
        raise ChatTemplateError(f"chat template accesses unsafe attribute {attribute!r} of {type(obj).__name__}")

    def concat_checked(self, pieces: Iterable[str]) -> str:
        pieces = list(pieces)
        _BUDGET.get().size(sum(map(len, pieces)))
        return "".join(pieces)


class ChatTemplate:
    """A compiled chat template; ``render`` is safe to call with any caller data."""

    def __init__(self, source: str, *, time_limit: float = TIME_LIMIT, max_output: int = MAX_OUTPUT) -> None:
        if len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE:
            raise ChatTemplateError(f"chat template source is larger than {MAX_SOURCE:,} bytes")
        if _MARKERS.search(source):
            raise ChatTemplateError("chat template contains characters reserved for tracking caller text")
        self._time_limit, self._max_output = time_limit, max_output
        env = _Sandbox(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])  # as transformers does
        env.concat = env.concat_checked  # type: ignore[method-assign]  # macro and block output
        env.filters["tojson"] = _tojson
        env.filters = {name: _checked_filter(f) for name, f in env.filters.items()}
        env.globals.update(raise_exception=_raise_exception, strftime_now=lambda f: datetime.now().strftime(f))
        self._env = env
        try:
            self._template = env.from_string(source)
        except TemplateError as exc:
            raise ChatTemplateError(f"chat template does not compile: {exc}") from exc

    def render(
        self,
        messages: Iterable[Mapping[str, Any]],
        *,
        add_generation_prompt: bool = True,
        tools: Iterable[Mapping[str, Any]] | None = None,
        bos_token: str = "",
        eos_token: str = "",
        **extra: Any,
    ) -> RenderedPrompt:
        """Render; strings in ``messages``, ``tools`` and nested ``extra`` values are caller text.

        Top-level string extras (``bos_token``, a date) are trusted, like the template itself.
        """
        trusted = {"add_generation_prompt": add_generation_prompt, "bos_token": bos_token, "eos_token": eos_token}
        plain = {k: v for k, v in extra.items() if v is None or isinstance(v, str | bool | int | float)}
        if any(isinstance(v, str) and _MARKERS.search(v) for v in (*plain.values(), bos_token, eos_token)):
            raise ChatTemplateError("template variables contain characters reserved for tracking caller text")
        caller = {k: v for k, v in extra.items() if k not in plain} | {"messages": list(messages)}
        if tools is not None:
            caller["tools"] = list(tools)
        slots: list[str] = []
        budget = _Budget(self._time_limit, self._max_output)
        tracked = self._run(budget, {**trusted, **plain, **{k: _track(slots, v) for k, v in caller.items()}})
        segments = tuple(_segments(tracked, slots))
        if "".join(s.text for s in segments) != self._run(budget, {**trusted, **plain, **caller}):
            raise ChatTemplateError("chat template transforms message text in a way that cannot be kept non-special")
        return RenderedPrompt(segments)

    def _run(self, budget: _Budget, variables: dict[str, Any]) -> str:
        previous, reset = sys.gettrace(), _BUDGET.set(budget)
        sys.settrace(budget.trace)
        try:
            out: list[str] = []
            size = 0
            for chunk in self._template.generate(variables):
                size += len(chunk)
                budget.size(size)
                out.append(chunk)
            return "".join(out)
        except ChatTemplateError:
            raise
        except Exception as exc:  # anything a template provokes (SecurityError, TypeError, RecursionError ...)
            raise ChatTemplateError(f"chat template failed: {type(exc).__name__}: {exc}") from exc
        finally:
            sys.settrace(previous)
            _BUDGET.reset(reset)


def _segments(rendered: str, slots: list[str]) -> Iterable[Segment]:
    start = 0
    for match in _SENTINEL.finditer(rendered):
        yield from _template_text(rendered[start : match.start()])
        index = int("".join(format(ord(c) - _DIGIT0, "x") for c in match.group(1)), 16)
        if index >= len(slots):
            raise ChatTemplateError("chat template output holds a damaged caller-text sentinel")
        if slots[index]:
            yield Segment(slots[index], trusted=False)
        start = match.end()
    yield from _template_text(rendered[start:])


def _template_text(text: str) -> Iterable[Segment]:
    if _MARKERS.search(text):
        raise ChatTemplateError("chat template took caller text apart in a way that cannot be tracked")
    if text:
        yield Segment(text, trusted=True)


def _checked_filter(function: Callable[..., Any]) -> Callable[..., Any]:
    """Filters bypass the sandbox's call hook; ``center(10**9)`` would allocate in one C call."""

    def checked(*args: Any, **kwargs: Any) -> Any:
        _check_sizes(args[1:], kwargs)  # the filtered value itself may be any number
        return function(*args, **kwargs)

    if hasattr(function, "jinja_pass_arg"):  # filters given the context or environment keep their marker
        checked.jinja_pass_arg = function.jinja_pass_arg  # type: ignore[attr-defined]
    return checked


def _check_sizes(args: Iterable[Any], kwargs: Mapping[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool):
            _BUDGET.get().size(abs(value))


def _check_format(spec: str, width: re.Pattern[str]) -> None:
    if width.search(spec):
        raise ChatTemplateError("chat template formats with a width or precision that is too large")


def _tojson(
    value: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None, sort_keys: bool = False
) -> str:
    """transformers' ``tojson``, with each caller string still tracked once escaped."""

    def escaped(item: Any) -> Any:
        if isinstance(item, _Text):
            return _Text(item._slots, json.dumps(item._real, ensure_ascii=ensure_ascii)[1:-1])
        if isinstance(item, Mapping):
            return {escaped(k): escaped(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [escaped(v) for v in item]
        return item

    return json.dumps(escaped(value), ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)


def _raise_exception(message: str) -> NoReturn:
    raise ChatTemplateError(f"chat template refused the conversation: {message}")
