"""Outbound connections go only where the agent's profile allows, to the address that was checked.

A host name passes ``policy.host_not_allowed`` on its name, but a name can resolve to an internal
address (a rebinding DNS server, ``127.0.0.1.nip.io``). Before mitmproxy connects upstream for a proxied
request, this addon resolves the name itself, checks every address against the profile, and pins the
connection to the first address that passes, so the address connected to is the address that was judged.
A refused connection fails the flow with the reason, which the gatekeeper records.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from mitmproxy.proxy import mode_specs, server_hooks

from gateway.addons.auth import AgentAuth, profile_of
from gateway.enforce import check_connection
from gateway.findings import decide
from policies.schema import Policy

__all__ = ["EgressGuard"]


class EgressGuard:
    def __init__(self, policy: Policy, auth: AgentAuth) -> None:
        self.policy, self.auth = policy, auth

    async def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        if isinstance(data.client.proxy_mode, mode_specs.ReverseMode) or data.server.address is None:
            return  # the operator's own upstream
        caller = self.auth.caller_of(data.client)
        if caller is None:
            data.server.error = "modelgate: no authenticated agent for this connection"
            return
        host, port = data.server.address
        profile = profile_of(caller.agent, self.policy.gateway)
        try:
            addresses = await _resolve(host, port)
        except OSError as exc:
            data.server.error = f"modelgate: cannot resolve {host}: {exc}"
            return
        reasons: list[str] = []
        for address in addresses:
            findings = check_connection(host, port, address, profile)
            if decide(findings) != "block":
                data.server.address = (address, port)
                return
            reasons += [f.reason for f in findings if f.action == "block"]
        data.server.error = "modelgate blocked the connection: " + "; ".join(dict.fromkeys(reasons))


async def _resolve(host: str, port: int) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
