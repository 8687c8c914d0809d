"""The OpenAI-compatible HTTP server in front of one verified model.

Every ``/v1`` call needs the bearer token (compared in constant time), bodies are capped before they
are parsed, and every failure answers in OpenAI's error shape; nothing a client sends can take the
server down. Tool calls and ``json_object`` responses are checked before they are returned, so while
either is active a stream holds the text back and sends it, checked, in its last chunk.

``response_format: json_object`` adds a system hint asking for one JSON object; it is not enforced by
decoding. When the model writes one (code fences are removed), that is the content; otherwise the
content is the model's text as written, with its real ``finish_reason``, and the client must check it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uvicorn
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from engine.api_schema import ChatCompletionRequest, CompletionRequest, chunk, completion_id, envelope, usage
from engine.async_engine import AsyncEngine, Delta
from engine.errors import EngineError
from engine.identity import challenge_message
from engine.loader import LoadedModel
from engine.openai_responses import HttpError, guarded, sse
from engine.sampling_params import Alternatives, SamplingParams
from engine.tool_calls import parse_tool_calls, prompt_messages, template_supports_tools, with_system_section

__all__ = ["JSON_HINT", "create_app", "serve"]

JSON_HINT = "Respond with a single JSON object and nothing else."

_Body = TypeVar("_Body", bound=BaseModel)
_DISCONNECT_POLL_S = 0.25


@dataclass(slots=True)
class _Choice:
    """What one job generated, gathered from its deltas."""

    text: str = ""
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    alternatives: list[Alternatives] = field(default_factory=list)
    finish_reason: str | None = None

    @classmethod
    def of(cls, delta: Delta) -> _Choice:
        choice = cls()
        choice.add(delta)
        choice.finish_reason = None
        return choice

    def add(self, delta: Delta) -> None:
        self.text += delta.text
        self.tokens.append(delta.token_id)
        self.logprobs.append(delta.logprob)
        self.alternatives.append(delta.alternatives)
        self.finish_reason = delta.finish_reason or self.finish_reason


class _Api:
    def __init__(self, loaded: LoadedModel, engine: AsyncEngine, model_name: str, max_body_bytes: int,
                 max_prompt_tokens: int) -> None:
        self.loaded, self.engine, self.model_name = loaded, engine, model_name
        self.max_body_bytes, self.max_prompt_tokens = max_body_bytes, max_prompt_tokens
        self.native_tools = template_supports_tools(loaded.tokenizer.chat_template)

    async def models(self, request: Request) -> Response:
        created = int(self.loaded.record.at.timestamp())
        return JSONResponse({"object": "list", "data": [{"id": self.model_name, "object": "model",
                                                         "created": created, "owned_by": "modelgate"}]})

    async def health(self, request: Request) -> Response:
        record = self.loaded.record.to_json()
        digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
        return JSONResponse({"status": "ok", "model": self.model_name, "policy": record["policy"],
                             "manifest_digest": record["manifest_digest"], "load_record_sha256": digest})

    async def attestation(self, request: Request) -> Response:
        """The load record (verdict and evidence) and a signature by the identity key the evidence binds,
        over the caller's nonce and the record: proof that this very process loaded that model."""
        try:
            nonce = bytes.fromhex(request.query_params.get("nonce", ""))
        except ValueError:
            nonce = b""
        if not 16 <= len(nonce) <= 64:
            raise HttpError(400, "give a fresh nonce of 16 to 64 bytes in hex: /v1/attestation?nonce=...",
                            param="nonce")
        record = json.dumps(self.loaded.record.to_json(), sort_keys=True).encode()
        return JSONResponse({"load_record": json.loads(record), "nonce": nonce.hex(),
                             "identity_key": self.loaded.identity.public_der.hex(),
                             "signature": self.loaded.identity.sign(challenge_message(nonce, record)).hex()})

    async def metrics(self, request: Request) -> Response:
        return PlainTextResponse(self.engine.metrics.prometheus(), media_type="text/plain; version=0.0.4")

    async def chat(self, request: Request) -> Response:
        req = self._parse(ChatCompletionRequest, await self._body(request))
        prompt = await run_in_threadpool(self._chat_prompt, req)
        jobs = [(prompt, self._params(req.params, i)) for i in range(req.n)]
        if req.stream:
            return sse(self._chat_events(req, jobs, len(prompt)))
        choices = await self._collect(request, jobs)
        out = []
        for index, choice in enumerate(choices):
            message, reason = self._message(req, choice)
            logprobs = self._chat_logprobs(choice) if req.logprobs else None
            out.append({"index": index, "message": message, "logprobs": logprobs, "finish_reason": reason})
        total = sum(len(c.tokens) for c in choices)
        return JSONResponse(envelope(completion_id("chatcmpl"), "chat.completion", self.model_name, out,
                                     usage(len(prompt), total)))

    async def completions(self, request: Request) -> Response:
        req = self._parse(CompletionRequest, await self._body(request))
        prompts = [self._checked(self.loaded.tokenizer.encode(p)) for p in req.prompts]
        jobs = [(p, self._params(req.params, j)) for p in prompts for j in range(req.n)]
        prompt_tokens = sum(map(len, prompts))
        if req.stream:
            return sse(self._completion_events(req, jobs, prompt_tokens))
        choices = await self._collect(request, jobs)
        out = [{"index": i, "text": c.text, "finish_reason": c.finish_reason,
                "logprobs": self._legacy_logprobs(c) if req.logprobs is not None else None}
               for i, c in enumerate(choices)]
        total = sum(len(c.tokens) for c in choices)
        return JSONResponse(envelope(completion_id("cmpl"), "text_completion", self.model_name, out,
                                     usage(prompt_tokens, total)))

    def _chat_prompt(self, req: ChatCompletionRequest) -> list[int]:
        template = self.loaded.chat_template
        if template is None:
            raise HttpError(400, "this model has no chat template; use /v1/completions")
        messages, tools = prompt_messages(req, native=self.native_tools)
        if req.json_mode:
            messages = with_system_section(messages, JSON_HINT)
        try:
            rendered = template.render(messages, tools=tools, **self.loaded.tokenizer.template_tokens)
            return self._checked(self.loaded.tokenizer.encode_chat(rendered.segments))
        except EngineError as exc:  # the template refused the conversation, or the text would not encode
            raise HttpError(400, exc.reason, param="messages") from None

    def _checked(self, prompt: list[int]) -> list[int]:
        if not prompt:
            raise HttpError(400, "the prompt is empty", param="prompt")
        if len(prompt) > self.max_prompt_tokens:
            raise HttpError(400, f"the prompt is {len(prompt)} tokens; this server accepts at most "
                                  f"{self.max_prompt_tokens}", param="messages", code="context_length_exceeded")
        return prompt

    def _message(self, req: ChatCompletionRequest, choice: _Choice) -> tuple[dict[str, Any], str | None]:
        if tools := req.active_tools:
            parsed = parse_tool_calls(choice.text, tools, tool_choice=req.tool_choice,
                                      parallel=req.parallel_tool_calls)
            if parsed.calls:
                calls = [c.to_json() for c in parsed.calls]
                return {"role": "assistant", "content": parsed.content, "tool_calls": calls}, "tool_calls"
        text = _json_text(choice.text) if req.json_mode else choice.text
        return {"role": "assistant", "content": text}, choice.finish_reason

    async def _chat_events(self, req: ChatCompletionRequest, jobs: list[tuple[list[int], SamplingParams]],
                           prompt_tokens: int) -> AsyncIterator[dict[str, Any]]:
        cid, model = completion_id("chatcmpl"), self.model_name
        buffered = bool(req.active_tools) or req.json_mode
        choices = [_Choice() for _ in jobs]
        for index in range(len(jobs)):
            yield chunk(cid, model, index, {"role": "assistant", "content": ""})
        async with aclosing(self.engine.generate(jobs)) as stream:
            async for d in stream:
                choice = choices[d.index]
                choice.add(d)
                if not buffered:
                    logprobs = self._chat_logprobs(_Choice.of(d)) if req.logprobs else None
                    if d.text or d.finish_reason or logprobs:
                        yield chunk(cid, model, d.index, {"content": d.text}, d.finish_reason, logprobs)
                elif d.finish_reason:
                    message, reason = self._message(req, choice)
                    delta = {k: v for k, v in message.items() if k != "role" and v is not None}
                    for k, call in enumerate(delta.get("tool_calls", ())):
                        call["index"] = k
                    logprobs = self._chat_logprobs(choice) if req.logprobs else None
                    yield chunk(cid, model, d.index, delta, reason, logprobs)
        if req.include_usage:
            yield envelope(cid, "chat.completion.chunk", model, [],
                           usage(prompt_tokens, sum(len(c.tokens) for c in choices)))

    async def _completion_events(self, req: CompletionRequest, jobs: list[tuple[list[int], SamplingParams]],
                                 prompt_tokens: int) -> AsyncIterator[dict[str, Any]]:
        cid, generated = completion_id("cmpl"), 0
        async with aclosing(self.engine.generate(jobs)) as stream:
            async for d in stream:
                generated += 1
                logprobs = self._legacy_logprobs(_Choice.of(d)) if req.logprobs is not None else None
                choice = {"index": d.index, "text": d.text, "logprobs": logprobs, "finish_reason": d.finish_reason}
                yield envelope(cid, "text_completion", self.model_name, [choice])
        if req.include_usage:
            yield envelope(cid, "text_completion", self.model_name, [], usage(prompt_tokens, generated))

    async def _collect(self, request: Request, jobs: list[tuple[list[int], SamplingParams]]) -> list[_Choice]:
        """Every job's output; a client that goes away meanwhile aborts its sequences, as a closed stream does."""
        choices = [_Choice() for _ in jobs]

        async def consume() -> None:
            async with aclosing(self.engine.generate(jobs)) as stream:
                async for d in stream:
                    choices[d.index].add(d)

        task = asyncio.ensure_future(consume())
        while not (await asyncio.wait({task}, timeout=_DISCONNECT_POLL_S))[0]:
            if await request.is_disconnected():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                raise HttpError(499, "the client closed the connection")
        task.result()
        return choices

    def _token_texts(self, tokens: list[int]) -> list[str]:
        return [self._token_text(t) for t in tokens]

    def _token_text(self, token: int) -> str:
        return self.loaded.tokenizer.decode([token], skip_special=False)

    def _chat_logprobs(self, choice: _Choice) -> dict[str, Any]:
        def entry(text: str, logprob: float) -> dict[str, Any]:
            return {"token": text, "logprob": logprob, "bytes": list(text.encode())}

        pieces = zip(self._token_texts(choice.tokens), choice.logprobs, choice.alternatives, strict=True)
        return {"content": [entry(t, lp) | {"top_logprobs": [entry(self._token_text(a), alp) for a, alp in top]}
                            for t, lp, top in pieces]}

    def _legacy_logprobs(self, choice: _Choice) -> dict[str, Any]:
        texts = self._token_texts(choice.tokens)
        offsets = [sum(map(len, texts[:i])) for i in range(len(texts))]
        tops = [{self._token_text(a): alp for a, alp in top} for top in choice.alternatives]
        return {"tokens": texts, "token_logprobs": choice.logprobs, "top_logprobs": tops if any(tops) else None,
                "text_offset": offsets}

    def _params(self, make: Callable[[int], SamplingParams], index: int) -> SamplingParams:
        try:
            return make(index)
        except EngineError as exc:
            raise HttpError(400, exc.reason) from None

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise HttpError(413, f"the request body is larger than {self.max_body_bytes} bytes")
        parts, size = [], 0
        async for part in request.stream():
            size += len(part)
            if size > self.max_body_bytes:
                raise HttpError(413, f"the request body is larger than {self.max_body_bytes} bytes")
            parts.append(part)
        return b"".join(parts)

    def _parse(self, model: type[_Body], body: bytes) -> _Body:
        try:
            parsed = model.model_validate_json(body)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            if error["type"] == "json_invalid":
                raise HttpError(400, f"the body is not valid JSON: {error['msg']}", code="invalid_json") from None
            param = ".".join(map(str, error["loc"])) or None
            raise HttpError(400, f"{param or 'body'}: {error['msg']}", param=param) from None
        if getattr(parsed, "model", None) != self.model_name:
            raise HttpError(404, f"the model {getattr(parsed, 'model', None)!r} does not exist", param="model",
                             code="model_not_found")
        return parsed


def _json_text(text: str) -> str:
    """The JSON object the model wrote, without code fences; its text unchanged if there is none."""
    body = text.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    try:
        return body if isinstance(json.loads(body), dict) else text
    except ValueError:
        return text


def create_app(loaded: LoadedModel, engine: AsyncEngine, *, model_name: str, api_token: str,
               max_body_bytes: int = 1 << 20, max_prompt_tokens: int | None = None) -> Starlette:
    """The app; the caller owns ``engine`` and shuts it down."""
    if not api_token:
        raise EngineError("the server needs an API token")
    api = _Api(loaded, engine, model_name, max_body_bytes, max_prompt_tokens or engine.max_seq_len - 1)
    token = api_token.encode()
    routes = [
        Route("/health", guarded(api.health, None), methods=["GET"]),
        Route("/metrics", guarded(api.metrics, token), methods=["GET"]),
        Route("/v1/models", guarded(api.models, token), methods=["GET"]),
        Route("/v1/attestation", guarded(api.attestation, token), methods=["GET"]),
        Route("/v1/chat/completions", guarded(api.chat, token), methods=["POST"]),
        Route("/v1/completions", guarded(api.completions, token), methods=["POST"]),
    ]
    return Starlette(routes=routes)


def serve(loaded: LoadedModel, *, model_name: str, api_token: str, host: str = "127.0.0.1", port: int = 8000,
          num_slots: int = 8, max_seq_len: int = 2048, log_level: str = "info") -> None:
    """Serve until interrupted; loopback only unless ``host`` says otherwise."""
    engine = AsyncEngine.from_loaded(loaded, num_slots=num_slots, max_seq_len=max_seq_len)
    try:
        app = create_app(loaded, engine, model_name=model_name, api_token=api_token)
        uvicorn.run(app, host=host, port=port, ws="none", lifespan="off", log_level=log_level)
    finally:
        engine.shutdown()
