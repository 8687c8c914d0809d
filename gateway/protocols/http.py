"""Any other HTTP call: a bounded text view of a readable body, so detectors see what leaves or comes back.

The view is a ``Message`` with role ``body`` (the event model has no field of its own for it), so a
detector that scans messages scans opaque bodies without knowing about them. Binary bodies get no view;
a body without a Content-Type gets one only if it is UTF-8. A view is cut at ``Limits.max_text_chars``
and says so.
"""

from __future__ import annotations

import json

from gateway.events import Message
from gateway.protocols.shape import RequestFields, ResponseFields, bounded
from gateway.protocols.wire import ErrorReply, Headers, Limits, RawRequest, RawResponse

__all__ = ["error_reply", "request_fields", "response_fields", "text_view"]

_TEXT_TYPES = frozenset({"application/json", "application/xml", "application/x-www-form-urlencoded",
                         "application/javascript", "application/x-ndjson", "application/graphql",
                         "application/yaml", "application/x-yaml", "application/jsonl"})


def text_view(headers: Headers, body: bytes, limit: int) -> str | None:
    if not body:
        return None
    media = headers.media_type()
    if not media:
        try:
            return bounded(body.decode("utf-8"), limit)
        except UnicodeDecodeError:
            return None
    if not (media.startswith("text/") or media in _TEXT_TYPES or media.endswith(("+json", "+xml"))):
        return None
    try:
        text = body.decode(headers.charset() or "utf-8", "replace")
    except (LookupError, UnicodeError):  # an unknown or non-text codec named in the header
        text = body.decode("utf-8", "replace")
    return bounded(text, limit)


def request_fields(raw: RawRequest, limits: Limits) -> RequestFields:
    view = text_view(raw.headers, raw.body, limits.max_text_chars)
    return RequestFields(messages=(Message(role="body", text=view),)) if view else RequestFields()


def response_fields(raw: RawResponse, limits: Limits) -> ResponseFields:
    view = text_view(raw.headers, raw.body, limits.max_text_chars) or ""
    return ResponseFields(text=view, error=(view or f"HTTP {raw.status}") if raw.status >= 400 else None)


def error_reply(status: int, message: str) -> ErrorReply:
    """For a call that is no API the gateway knows: a small JSON body that says who refused it and why."""
    return ErrorReply(status, json.dumps({"error": {"type": "modelgate_refused", "message": message}}).encode())
