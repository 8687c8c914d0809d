"""HTTP as the protocol parsers see it: raw parts in, an error answer out, and the limits that bound both.

Kept free of mitmproxy so that every parser is a pure function that tests can call with bytes; the
addons copy a flow's parts into a ``RawRequest`` / ``RawResponse`` once (decoded bodies: mitmproxy's
``.content``, which undoes Content-Encoding).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["ErrorReply", "Headers", "Limits", "RawRequest", "RawResponse", "clean_text"]


@dataclass(frozen=True)
class Limits:
    """Bounds on what the gateway will parse or hold; beyond them a request is refused, never half-read."""

    max_body_bytes: int = 16 * 2**20
    """A request or response body larger than this is not parsed (chat requests with images run to megabytes)."""
    max_json_depth: int = 64
    """Nesting of arrays and objects; JSON Schemas in tool specs reach ~20, hostile bodies ~100000."""
    max_text_chars: int = 64 * 1024
    """The text view of an opaque body kept for detectors."""
    max_event_bytes: int = 4 * 2**20
    """One server-sent event (an MCP tool result arrives as a single event)."""
    max_held_bytes: int = 4 * 2**20
    """What a stream guard buffers while a tool call's arguments are incomplete."""


class Headers:
    """Case-insensitive, immutable request or response headers; repeated fields read as one, joined by ', '.

    Joining is RFC 9110's rule, and it makes a repeated security-relevant header (two session ids)
    fail validation instead of letting the gateway and the upstream each pick a different copy.
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = fields.items() if isinstance(fields, Mapping) else fields
        joined: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            joined[key] = f"{joined[key]}, {value}" if key in joined else value
        self._fields = joined

    def get(self, name: str) -> str | None:
        return self._fields.get(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields

    def media_type(self) -> str:
        """The Content-Type without parameters, lower-cased; '' when absent."""
        return (self.get("content-type") or "").partition(";")[0].strip().lower()

    def charset(self) -> str | None:
        for param in (self.get("content-type") or "").split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset":
                return value.strip().strip('"').lower() or None
        return None

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"


@dataclass(frozen=True)
class RawRequest:
    method: str
    scheme: str
    host: str
    port: int
    path: str
    """Path and query, as sent."""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""


@dataclass(frozen=True)
class ErrorReply:
    """An answer the gateway sends instead of the upstream's, in the shape the agent's client library parses."""

    status: int
    body: bytes
    content_type: str = "application/json"

    def headers(self) -> dict[str, str]:
        return {"content-type": self.content_type} if self.body else {}


def clean_text(text: str) -> str:
    """``text`` without lone surrogates (mitmproxy decodes undecodable path bytes to them); they cannot be stored."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
