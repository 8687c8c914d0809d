"""What a request and its answer said, read back from the stored (redacted) bodies by the gateway's own parsers.

The audit record keeps names and counts (tool called, tools offered, results carried); the detail
and session pages also show arguments, results and the conversation. Those come from running the
stored bodies through ``gateway.protocols`` again, exactly as the proxy parsed them live, so the page
shows what the gateway judged. A body that was capped, not stored, or not parseable says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.events import RequestEvent, ResponseEvent
from gateway.protocols import Headers, RawRequest, RawResponse, normalise_request, normalise_response

__all__ = ["Exchange", "read_exchange"]


@dataclass(frozen=True)
class Exchange:
    request: RequestEvent | None
    response: ResponseEvent | None
    notes: tuple[str, ...] = ()
    """Why a part could not be read back (no body stored, body capped, parse error)."""


def read_exchange(request_data: dict[str, Any], request_body: bytes | None,
                  response_data: dict[str, Any] | None, response_body: bytes | None) -> Exchange:
    """Parse the stored bodies of one request record and its response record (either may be missing)."""
    notes: list[str] = []
    request = None
    if request_body is None:
        notes.append("the request body was not stored")
    else:
        _capped(request_data, "request", notes)
        raw = RawRequest(str(request_data.get("method") or "POST"), str(request_data.get("scheme") or "http"),
                         str(request_data.get("host") or ""), int(request_data.get("port") or 0),
                         str(request_data.get("path") or "/"), Headers(_pairs(request_data)), request_body)
        request = normalise_request(raw, request_id=str(request_data.get("request_id") or ""),
                                    agent=str(request_data.get("agent") or ""),
                                    direction=request_data.get("direction") or "reverse")
        if request.parse_error:
            notes.append(f"the request body: {request.parse_error}")
    response = None
    if response_data is not None and request is not None:
        if response_body is None:
            notes.append("the response body was not stored (streamed through, or bodies are off)")
        else:
            _capped(response_data, "response", notes)
            raw_response = RawResponse(int(response_data.get("status") or 0), Headers(_pairs(response_data)),
                                       response_body)
            response = normalise_response(raw_response, request)
            if response.parse_error:
                notes.append(f"the response body: {response.parse_error}")
    return Exchange(request, response, tuple(notes))


def _pairs(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(p[0]), str(p[1])) for p in data.get("headers") or () if isinstance(p, list) and len(p) == 2]


def _capped(data: dict[str, Any], what: str, notes: list[str]) -> None:
    body = data.get("body") or {}
    if body.get("truncated"):
        notes.append(f"the {what} body was capped at {body.get('stored_size')} of {body.get('size')} bytes: "
                     "what follows is parsed from the part kept")
