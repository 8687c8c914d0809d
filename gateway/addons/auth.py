"""Agent identity: every request through the gateway carries an agent's key, or it gets 401 / 407.

In reverse mode (the gateway as the agents' LLM endpoint) the key is the API key the agent's SDK sends:
``Authorization: Bearer`` (OpenAI) or ``x-api-key`` (Anthropic). It is removed, and the upstream's own
credential is put in its place, so agents never hold the engine's or a provider's key. In regular proxy
mode the key comes in ``Proxy-Authorization`` (Basic with the key as the password, or Bearer), on the
CONNECT that opens a tunnel, whose requests then all belong to that agent, or on each plain HTTP request.
"""

from __future__ import annotations

import base64
import binascii
import json
import weakref
from collections.abc import MutableMapping
from dataclasses import dataclass

from mitmproxy import connection, http
from mitmproxy.proxy import mode_specs

from gateway.addons.fields import joined, rewrite
from gateway.audit.agents import Agent, AgentStore
from gateway.errors import AuditUnavailable
from gateway.events import Direction
from policies.gateway import GatewayProfile, GatewaySection

__all__ = ["AGENT", "AgentAuth", "Caller", "UpstreamCredential", "profile_of"]

AGENT = "modelgate.caller"
"""``flow.metadata`` key of the authenticated ``Caller``."""

_REALM = 'Basic realm="modelgate", charset="UTF-8"'
_DENY_ALL = GatewayProfile(name="unknown-profile")
_KEY_HEADERS = frozenset({b"authorization", b"x-api-key"})


@dataclass(frozen=True, slots=True)
class Caller:
    agent: Agent
    direction: Direction


@dataclass(frozen=True, slots=True)
class UpstreamCredential:
    """What reverse mode sends upstream in place of the agent's key (the engine's token, a provider's key)."""

    header: str
    value: str


def profile_of(agent: Agent, gateway: GatewaySection) -> GatewayProfile:
    """The policy's profile for ``agent``: the policy's own agent list wins, then the profile the agent was
    issued with; a profile the policy does not define allows nothing (fail closed)."""
    listed = gateway.profile_for(agent.name)
    if agent.name in {name for p in gateway.profiles for name in p.agents} or agent.profile == "default":
        return listed
    return next((p for p in gateway.profiles if p.name == agent.profile), _DENY_ALL)


class AgentAuth:
    def __init__(self, store: AgentStore, upstream: UpstreamCredential | None = None) -> None:
        self.store, self.upstream = store, upstream
        self._drop: frozenset[bytes] = _KEY_HEADERS
        self._add: tuple[tuple[str, str], ...] = ()
        """Reverse mode's header rewrite: the agent's key out, the upstream's credential in."""
        if upstream is not None:
            self._drop = _KEY_HEADERS | {upstream.header.lower().encode()}
            self._add = ((upstream.header, upstream.value),)
        self._callers: MutableMapping[connection.Client, Caller] = weakref.WeakKeyDictionary()

    def caller_of(self, client: connection.Client) -> Caller | None:
        """The agent of a client connection's latest authenticated request (or of its tunnel)."""
        return self._callers.get(client)

    def http_connect(self, flow: http.HTTPFlow) -> None:
        agent = self._proxy_agent(flow)
        if agent is not None:
            self._callers[flow.client_conn] = Caller(agent, "forward")

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            return
        if isinstance(flow.client_conn.proxy_mode, mode_specs.ReverseMode):
            self._reverse(flow)
            return
        tunnel = self._callers.get(flow.client_conn) if flow.request.scheme == "https" else None
        agent = tunnel.agent if tunnel is not None else self._proxy_agent(flow)
        if agent is not None:
            flow.metadata[AGENT] = self._callers[flow.client_conn] = Caller(agent, "forward")

    def _reverse(self, flow: http.HTTPFlow) -> None:
        sent = joined(flow.request.headers, _KEY_HEADERS)
        bearer = sent.get(b"authorization", "")
        key = bearer[7:].strip() if bearer[:7].lower() == "bearer " else sent.get(b"x-api-key", "").strip()
        agent = self._lookup(flow, key, proxy=False)
        if agent is None:
            return
        rewrite(flow.request.headers, self._drop, self._add)
        flow.metadata[AGENT] = Caller(agent, "reverse")

    def _proxy_agent(self, flow: http.HTTPFlow) -> Agent | None:
        value = flow.request.headers.pop("proxy-authorization", "")
        scheme, _, credential = value.partition(" ")
        key = credential.strip()
        if scheme.lower() == "basic":
            try:
                key = base64.b64decode(credential, validate=True).decode("utf-8").partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        elif scheme.lower() != "bearer":
            key = ""
        return self._lookup(flow, key, proxy=True)

    def _lookup(self, flow: http.HTTPFlow, key: str, *, proxy: bool) -> Agent | None:
        try:
            agent = self.store.lookup(key) if key else None
        except AuditUnavailable as exc:
            flow.response = _error(503, f"modelgate cannot check agent keys now: {exc.reason}", proxy=proxy)
            return None
        if agent is None:
            why = "an agent key is required" if not key else "the agent key is not valid (unknown or revoked)"
            flow.response = _error(407 if proxy else 401, f"modelgate: {why}", proxy=proxy)
        return agent


def _error(status: int, message: str, *, proxy: bool) -> http.Response:
    """OpenAI's error shape, which Anthropic's and most HTTP clients also surface as the message."""
    body = {"error": {"message": message, "type": "authentication_error" if status in (401, 407) else
                      "service_unavailable", "param": None, "code": None}}
    headers = {"content-type": "application/json"}
    if status == 407:
        headers["proxy-authenticate"] = _REALM
    elif status == 401:
        headers["www-authenticate"] = 'Bearer realm="modelgate"'
    return http.Response.make(status, json.dumps(body).encode(), headers)
