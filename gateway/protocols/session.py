"""Which session a request belongs to, so that review shows one agent's piece of work as one story.

The rule, first match wins:

1. ``X-Modelgate-Session``: the client's own id, kept as it is. It must be 1-128 characters of
   ``A-Z a-z 0-9 . _ : @ / + = -`` starting with a letter or digit; anything else is refused
   (``SessionHeaderError``), not cleaned up, and a repeated header reads as ``"a, b"`` and is refused too.
2. ``Mcp-Session-Id``: ``mcp-`` and a hash of the server and the id. The id is a bearer-like secret the
   MCP server issued, so the audit log must not show it, and it is unique only per server.
3. An LLM conversation (OpenAI chat or completions, Anthropic messages) with a user message: ``conv-``
   and a hash of the agent, the system text and the first user message. Every turn resends both, so
   every turn of one conversation gets the same id. Two conversations that open with the same words
   share an id, and a client that trims the start of its history starts a new one.
4. Otherwise ``hour-<YYYYmmddTHH>Z-`` and a hash of the agent: that agent's traffic in that UTC hour.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from gateway.errors import SessionHeaderError
from gateway.events import Message, Protocol
from gateway.protocols import mcp
from gateway.protocols.wire import Headers

__all__ = ["SESSION_HEADER", "client_session", "derived_session"]

SESSION_HEADER = "x-modelgate-session"
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")
_CONVERSATIONS: frozenset[Protocol] = frozenset({"openai.chat", "openai.completions", "anthropic.messages"})


def client_session(headers: Headers) -> str | None:
    """Rule 1: the ``X-Modelgate-Session`` header, validated; None when absent."""
    value = headers.get(SESSION_HEADER)
    if value is None:
        return None
    if not _SAFE.fullmatch(value):
        raise SessionHeaderError(f"X-Modelgate-Session must be 1-128 characters of A-Z a-z 0-9 . _ : @ / + = - "
                                 f"starting with a letter or digit; got {value[:40]!r}")
    return value


def derived_session(*, agent: str, protocol: Protocol, headers: Headers, server: str, system: str,
                    messages: Sequence[Message], now: datetime | None = None) -> str:
    """Rules 2-4, for a request without (or with an invalid) ``X-Modelgate-Session``."""
    if (mcp_session := headers.get(mcp.SESSION_HEADER)) is not None:
        return f"mcp-{_digest(server, mcp_session)}"
    if protocol in _CONVERSATIONS:
        first_user = next((m.text for m in messages if m.role == "user"), None)
        if first_user is not None:
            return f"conv-{_digest(agent, system, first_user)}"
    hour = (now or datetime.now(UTC)).astimezone(UTC)
    return f"hour-{hour:%Y%m%dT%H}Z-{_digest(agent)[:16]}"


def _digest(*parts: str) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8", "surrogatepass")).hexdigest()[:32]
