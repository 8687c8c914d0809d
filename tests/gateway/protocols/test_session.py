"""Session ids: the header rule, MCP sessions hashed per server, conversations, hourly buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.errors import SessionHeaderError
from gateway.events import Message
from gateway.protocols import Headers
from gateway.protocols.session import client_session, derived_session

NOON = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
TURN = [Message(role="user", text="Summarise the repo"), Message(role="assistant", text="Sure")]


def derive(headers: dict[str, str] | None = None, *, agent: str = "bot", protocol: str = "openai.chat",
           server: str = "api", system: str = "Be brief", messages=TURN, now: datetime = NOON) -> str:
    return derived_session(agent=agent, protocol=protocol, headers=Headers(headers or {}), server=server,
                           system=system, messages=messages, now=now)


@pytest.mark.parametrize("value", ["run-42", "a", "tenant:job/7@2025+x=y_z.1", "x" * 128])
def test_client_header_is_kept_verbatim(value: str) -> None:
    assert client_session(Headers({"X-Modelgate-Session": value})) == value


@pytest.mark.parametrize("value", ["", "-leading-dash", "has space", "x" * 129, "semi;colon", "a, b", "naïve"])
def test_client_header_that_is_not_a_safe_token_is_refused(value: str) -> None:
    with pytest.raises(SessionHeaderError, match="X-Modelgate-Session"):
        client_session(Headers({"x-modelgate-session": value}))


def test_a_repeated_header_is_refused() -> None:
    with pytest.raises(SessionHeaderError):
        client_session(Headers([("x-modelgate-session", "a"), ("X-Modelgate-Session", "b")]))


def test_no_header_means_none() -> None:
    assert client_session(Headers({})) is None


def test_mcp_session_is_hashed_per_server_and_never_shown() -> None:
    one = derive({"mcp-session-id": "secret-token-1"}, protocol="mcp")
    assert one.startswith("mcp-") and "secret" not in one
    assert one == derive({"mcp-session-id": "secret-token-1"}, protocol="mcp", agent="other")
    assert one != derive({"mcp-session-id": "secret-token-1"}, protocol="mcp", server="other-server")


def test_a_conversation_keeps_its_id_across_turns() -> None:
    first = derive(messages=TURN[:1])
    later = derive(messages=[*TURN, Message(role="user", text="Now the tests")])
    assert first == later and first.startswith("conv-")
    assert first != derive(messages=TURN[:1], agent="other-bot")
    assert first != derive(messages=TURN[:1], system="Be verbose")
    assert first != derive(messages=[Message(role="user", text="Another task")])


def test_without_a_user_message_or_conversation_the_agents_hour_is_the_session() -> None:
    bucket = derive(messages=[], now=NOON)
    assert bucket.startswith("hour-20250301T12Z-")
    assert bucket == derive(protocol="http", messages=[], now=NOON + timedelta(minutes=29))
    assert bucket != derive(protocol="http", messages=[], now=NOON + timedelta(minutes=31))
    assert bucket != derive(protocol="http", messages=[], agent="other")
    local = NOON.astimezone(timezone(timedelta(hours=5)))
    assert derive(protocol="http", now=local) == bucket  # bucketed in UTC
