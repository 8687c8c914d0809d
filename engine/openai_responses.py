"""How the server answers at the HTTP level: OpenAI's error shape, server-sent events, and the guard.

Kept apart from the endpoints so that every way a request can end, refused, failed or streamed, is
written once: a handler raises ``HttpError`` anywhere, and ``guarded`` turns that, and anything else
that escapes, into an answer a client's OpenAI library understands.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from engine.errors import EngineError

__all__ = ["Handler", "HttpError", "guarded", "sse"]

log = logging.getLogger("engine.server")  # the server's log, where operators already look

Handler = Callable[[Request], Awaitable[Response]]


class HttpError(Exception):
    """An answer in OpenAI's error shape; raised anywhere in a handler."""

    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.body = status, {"error": {"message": message, "type": kind, "param": param, "code": code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status)


def sse(events: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    """Server-sent events; leaving early (a disconnect) closes ``events``, which aborts the generation."""

    async def body() -> AsyncIterator[str]:
        async with aclosing(events) as stream:
            try:
                async for event in stream:
                    yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
            except Exception as exc:  # headers are sent: report in-band, as OpenAI does
                log.exception("generation failed mid-stream")
                reason = exc.reason if isinstance(exc, EngineError) else "internal error"
                error = {"error": {"message": reason, "type": "server_error", "param": None, "code": None}}
                yield f"data: {json.dumps(error)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def guarded(handler: Handler, token: bytes | None) -> Handler:
    """Authorization first (constant time), then the handler; every failure becomes an OpenAI error answer."""

    async def endpoint(request: Request) -> Response:
        try:
            if token is not None:
                scheme, _, given = request.headers.get("authorization", "").partition(" ")
                if not hmac.compare_digest(given.encode(), token) or scheme.lower() != "bearer":
                    raise HttpError(401, "missing or incorrect API key", code="invalid_api_key")
            return await handler(request)
        except HttpError as exc:
            return exc.response()
        except EngineError as exc:
            log.warning("request failed: %s", exc.reason)
            return HttpError(500, exc.reason, kind="server_error").response()
        except Exception:
            log.exception("request failed")
            return HttpError(500, "internal error", kind="server_error").response()

    return endpoint
