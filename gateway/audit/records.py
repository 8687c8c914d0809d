"""What one audit record says: events, findings, headers and bodies turned into a record's content.

Everything that comes from the wire is redacted here, before it can reach the database: bodies,
headers, the path (query strings carry keys), and findings' reasons and evidence (a detector that
caught a key quotes it). Bodies are capped: the first ``body_cap`` bytes are kept, and the record
states the full size and the SHA-256 of the whole redacted body. That hash is of the redacted bytes on
purpose: a hash of the original would let anyone who reads the log confirm a guess of a redacted
password offline.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from gateway.audit.canonical import canonical_dumps
from gateway.audit.index import clip
from gateway.audit.redact import redact_bytes, redact_headers, redact_text
from gateway.events import RequestEvent, ResponseEvent
from gateway.findings import Finding, decide

__all__ = [
    "DEFAULT_BODY_CAP",
    "Entry",
    "RecordKind",
    "event_entry",
    "model_load_entry",
    "request_entry",
    "request_key",
    "response_entry",
]

RecordKind = Literal["request", "response", "model_load", "event", "checkpoint"]
Headers = Iterable[tuple[str, str]]

DEFAULT_BODY_CAP = 256 * 1024
"""Bytes of each body kept: enough for a chat request with its tools, not a whole upload."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A record ready to be chained: its content (and its canonical text) and the bodies it refers to."""

    kind: RecordKind
    at: datetime
    data: dict[str, Any]
    data_text: str
    request_id: str | None = None
    session: str | None = None
    bodies: tuple[tuple[str, bytes], ...] = ()
    """(sha256, content) of the redacted, capped bodies ``data`` refers to."""

    @classmethod
    def of(cls, kind: RecordKind, at: datetime, data: dict[str, Any], request_id: str | None = None,
           session: str | None = None, bodies: tuple[tuple[str, bytes], ...] = ()) -> Entry:
        """An entry whose text is ``data``'s canonical JSON; ValueError if it has none."""
        return cls(kind, at, data, canonical_dumps(data), request_id, session, bodies)


def request_entry(
    event: RequestEvent, findings: Sequence[Finding] = (), *, at: datetime, body: bytes | None = None,
    headers: Headers = (), body_cap: int = DEFAULT_BODY_CAP,
) -> Entry:
    """The record written before a request is forwarded (or refused)."""
    counts: Counter[str] = Counter()
    body_ref, bodies = _body(body, body_cap, counts)
    path, found = redact_text(event.path)
    _count(counts, found)
    data = {
        "request_id": _text(event.request_id),
        "agent": _text(event.agent),
        "session": _text(event.session),
        "direction": event.direction,
        "protocol": event.protocol,
        "method": _text(event.method),
        "scheme": _text(event.scheme),
        "host": _text(event.host),
        "port": event.port,
        "path": path,
        "model": _text(event.model),
        "stream": event.stream,
        "mcp_method": _text(event.mcp_method),
        "tool_call": _text(event.tool_call.name) if event.tool_call else None,
        "tools_offered": sorted({_text(t.name) for t in event.tools}),
        "tool_results": len(event.tool_results),
        "parse_error": _text(event.parse_error),
        "decision": decide(tuple(findings)),
        "findings": _findings(findings, counts),
        "headers": _headers(headers, counts),
        "body_size": len(body) if body is not None else event.body_size,
        "body": body_ref,
    }
    data["redactions"] = dict(sorted(counts.items()))
    return Entry.of("request", at, data, data["request_id"], data["session"], bodies)


def response_entry(
    event: ResponseEvent, findings: Sequence[Finding] = (), *, at: datetime, latency_us: int,
    session: str | None = None, body: bytes | None = None, headers: Headers = (),
    body_cap: int = DEFAULT_BODY_CAP,
) -> Entry:
    """The record of what came back, and what the gateway decided about it (a streamed tool call can be blocked)."""
    counts: Counter[str] = Counter()
    body_ref, bodies = _body(body, body_cap, counts)
    error = None
    if event.error is not None:
        error, found = redact_text(event.error)
        _count(counts, found)
    data = {
        "request_id": _text(event.request_id),
        "protocol": event.protocol,
        "status": event.status,
        "latency_us": latency_us,
        "decision": decide(tuple(findings)),
        "findings": _findings(findings, counts),
        "tool_calls": sorted({_text(c.name) for c in event.tool_calls}),
        "usage": (
            {"prompt_tokens": event.usage.prompt_tokens, "completion_tokens": event.usage.completion_tokens}
            if event.usage else None
        ),
        "finish_reason": _text(event.finish_reason),
        "error": error,
        "parse_error": _text(event.parse_error),
        "headers": _headers(headers, counts),
        "body_size": len(body) if body is not None else event.body_size,
        "body": body_ref,
    }
    data["redactions"] = dict(sorted(counts.items()))
    return Entry.of("response", at, data, data["request_id"], session, bodies)


def model_load_entry(load_record_json: Mapping[str, Any], *, at: datetime) -> Entry:
    """An engine model load (``LoadRecord.to_json()``), kept whole: it is the engine's own evidence."""
    return Entry.of("model_load", at, dict(load_record_json))


def event_entry(
    kind: str, *, at: datetime, data: Mapping[str, Any] | None = None, request_id: str | None = None,
    agent: str | None = None, session: str | None = None,
) -> Entry:
    """An approval, an integrity event, a gateway start or stop: ``kind`` names it (``approval.granted``)."""
    if not kind or len(kind) > 64:
        raise ValueError("an event kind is 1 to 64 characters")
    content = {"event": kind, "agent": agent, "session": session, "request_id": request_id,
               "details": dict(data or {})}
    return Entry.of("event", at, content, request_id, session)


def _body(raw: bytes | None, cap: int, counts: Counter[str]) -> tuple[dict[str, Any] | None, tuple]:
    if raw is None:
        return None, ()
    redacted = redact_bytes(raw)
    _count(counts, redacted.counts)
    kept = redacted.value[:cap]
    stored = hashlib.sha256(kept).hexdigest()
    ref = {
        "sha256": stored if len(kept) == len(redacted.value) else hashlib.sha256(redacted.value).hexdigest(),
        "size": len(raw),
        "stored": stored,
        "stored_size": len(kept),
        "truncated": len(kept) < len(redacted.value),
        "redactions": sum(redacted.counts.values()),
    }
    return ref, ((stored, kept),)


def _findings(findings: Sequence[Finding], counts: Counter[str]) -> list[dict[str, Any]]:
    out = []
    for f in findings:
        reason, found = redact_text(f.reason)
        _count(counts, found)
        evidence = []
        for item in f.evidence:
            text, found = redact_text(item)
            _count(counts, found)
            evidence.append(text)
        out.append({
            "rule": _text(f.rule), "action": f.action, "reason": reason, "severity": f.severity,
            "score": round(f.score, 4), "evidence": evidence, "source": f.source, "error": f.error,
        })
    return out


def _headers(headers: Headers, counts: Counter[str]) -> list[list[str]]:
    pairs, found = redact_headers((_text(name), value) for name, value in headers)
    _count(counts, found)
    return pairs


def _count(counts: Counter[str], found: Mapping[str, int]) -> None:
    if found:  # most texts have no secret, and Counter.update costs a microsecond even when given nothing
        counts.update(found)


def request_key(request_id: str) -> str:
    """A request id as the chain's ``request_id`` column and the index hold it."""
    return clip(_text(request_id), 128) or ""


def _text(value: str | None) -> str | None:
    """Text from the wire made storable: lone surrogates (mitmproxy's undecodable bytes) become U+FFFD."""
    if value is None or value.isascii():
        return value
    return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
