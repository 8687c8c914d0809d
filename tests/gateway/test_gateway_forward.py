"""Regular (forward) proxy mode: agents' outbound HTTPS calls intercepted with the gateway's CA, and MCP.

The local TLS server has its own test CA, which the gateway trusts for upstream TLS; the agent trusts
only the gateway's CA, as it would in production (``modelgate ca export``).
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from mcp import ClientSession, McpError
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import select

from gateway.audit.agents import add_agent
from gateway.audit.db import AuditDatabase, open_database
from gateway.audit.models import RequestIndex
from gateway.proxy import BackgroundGateway, GatewayConfig, ca_certificate
from policies.loader import load_policy
from tests.certgen import key_usage, make_cert, new_key
from tests.gateway.protocols.mcp_harness import notes_server
from tests.gateway.upstream import Upstream, upstream_app
from tests.servers import BackgroundServer, free_port

POLICY = """
version: 1
name: forward-test
gateway:
  default_profile: agents
  profiles:
    - name: agents
      tools: [{name: read_note}, {name: search}]
      hosts: ["localhost:*", "127.0.0.1:*"]
"""


@dataclass
class Forward:
    gateway: BackgroundGateway
    upstream: Upstream
    tls: BackgroundServer
    mcp: BackgroundServer
    key: str
    db: AuditDatabase
    home: Path

    def proxy(self, key: str | None = None) -> str:
        host, port = self.gateway.config.proxy_listen or ("", 0)
        return f"http://tester:{key or self.key}@{host}:{port}"

    def client(self, key: str | None = None) -> httpx.Client:
        trust = ssl.create_default_context(cafile=str(ca_certificate(self.home)))
        return httpx.Client(proxy=self.proxy(key), verify=trust, timeout=20)

    def index(self, complete: int) -> list[RequestIndex]:
        for _ in range(200):
            with self.db.sessions() as session:
                rows = list(session.scalars(select(RequestIndex).order_by(RequestIndex.id)))
            if sum(r.status is not None for r in rows) >= complete:
                break
            anyio.run(anyio.sleep, 0.05)
        return rows


def _tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for localhost / 127.0.0.1 signed by it."""
    ca_key, server_key = new_key(), new_key()
    ca = make_cert("Upstream Test CA", ca_key, ca=True, usage=key_usage("key_cert_sign", "crl_sign"))
    server = make_cert("localhost", server_key, (ca, ca_key), ca=False, usage=key_usage("digital_signature"),
                       eku=[ExtendedKeyUsageOID.SERVER_AUTH],
                       san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
                       not_before=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1))
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return paths


@pytest.fixture()
def forward(tmp_path: Path) -> Iterator[Forward]:
    (tmp_path / "policy.yaml").write_text(POLICY)
    ca, cert, key = _tls_files(tmp_path)
    record = Upstream()
    home = tmp_path / "home"
    db = open_database(None, home=home)
    agent_key = add_agent(db, "tester").key
    with BackgroundServer(upstream_app(record), certfile=str(cert), keyfile=str(key)) as tls, \
            BackgroundServer(notes_server(stateless_http=True).streamable_http_app(), lifespan="on") as mcp:
        config = GatewayConfig(policy=load_policy(tmp_path / "policy.yaml"), upstream="http://127.0.0.1:9",
                               reverse_listen=("127.0.0.1", free_port()), proxy_listen=("127.0.0.1", free_port()),
                               home=home, upstream_ca=ca, admin_listen=None)
        with BackgroundGateway(config) as gateway:
            yield Forward(gateway, record, tls, mcp, agent_key, db, home)
    db.close()


def test_https_is_intercepted_judged_recorded_and_forwarded(forward: Forward) -> None:
    with forward.client() as client:
        reply = client.post(f"https://localhost:{forward.tls.port}/api/search", json={"q": "weather"})
    assert reply.status_code == 200 and reply.json()["echo"] == {"q": "weather"}
    (row,) = forward.index(complete=1)
    assert (row.direction, row.host, row.protocol, row.status, row.decision) == ("forward", "localhost", "http", 200,
                                                                                 "allow")
    assert forward.upstream.ids() == [row.request_id]


def test_the_agent_sees_the_gateways_certificate_not_the_upstreams(forward: Forward) -> None:
    with httpx.Client(proxy=forward.proxy(), verify=True, timeout=20) as client:  # the system roots only
        with pytest.raises(httpx.ConnectError):
            client.get(f"https://localhost:{forward.tls.port}/api/x")


def test_a_proxy_request_without_a_valid_key_gets_407(forward: Forward) -> None:
    with forward.client(key="mgk_wrong") as client:
        with pytest.raises(httpx.ProxyError, match="407"):
            client.get(f"https://localhost:{forward.tls.port}/api/x")
    with httpx.Client(proxy=f"http://{forward.gateway.config.proxy_listen[0]}:"  # type: ignore[index]
                            f"{forward.gateway.config.proxy_listen[1]}", timeout=20) as client:  # type: ignore[index]
        assert client.get(f"http://127.0.0.1:{forward.mcp.port}/").status_code == 407
    assert forward.upstream.seen == []


@pytest.mark.parametrize("url", ["https://10.20.30.40/api/x", "http://169.254.169.254/latest/meta-data/"])
def test_destinations_the_profile_does_not_list_are_refused_and_recorded(forward: Forward, url: str) -> None:
    with forward.client() as client:
        reply = client.get(url)
    assert reply.status_code == 403 and "host" in reply.text
    (row,) = forward.index(complete=1)
    assert row.decision == "block" and "policy.host_not_allowed" in row.rules


def _mcp(forward: Forward, body):  # noqa: ANN001, ANN202 - an async test body
    async def run() -> object:
        async with httpx.AsyncClient(proxy=forward.proxy(), timeout=20) as http, streamable_http_client(
                f"http://127.0.0.1:{forward.mcp.port}/mcp", http_client=http) as (read, write, _), \
                ClientSession(read, write) as session:
            await session.initialize()
            return await body(session)

    return anyio.run(run)


def test_mcp_through_the_proxy_an_unlisted_tool_and_an_injected_result_are_refused(forward: Forward) -> None:
    async def calls(session: ClientSession) -> tuple[list[str], str, list[str]]:
        listed = await session.list_tools()
        note = await session.call_tool("read_note", {"name": "monday"})
        refused = []
        for name, arguments in (("add", {"a": 2, "b": 3}), ("read_note", {"name": "meeting"})):
            try:
                await session.call_tool(name, arguments)
            except McpError as exc:
                refused.append(str(exc))
        return [t.name for t in listed.tools], note.content[0].text, refused  # type: ignore[union-attr]

    names, note, refused = _mcp(forward, calls)
    assert sorted(names) == ["add", "read_note"] and note == "note monday"
    assert len(refused) == 2 and "add" in refused[0] and "modelgate" in refused[0]
    assert "injection" in refused[1].lower() or "instruction" in refused[1].lower(), refused[1]
    rows = forward.index(complete=6)  # initialize, initialized, tools/list and three calls
    assert all(r.protocol == "mcp" for r in rows) and all(r.status is not None for r in rows)
    calls = [r for r in rows if r.tools]
    assert [(r.tools, r.decision) for r in calls] == [("read_note", "allow"), ("add", "block"), ("read_note", "block")]
    assert "detect.injection." in calls[-1].rules  # the tool's answer was refused, not the call
    listing = next(r for r in rows if "policy.tool_offer_not_allowed" in r.rules)
    assert listing.decision == "alert"  # add was offered: recorded, not hidden from the agent
