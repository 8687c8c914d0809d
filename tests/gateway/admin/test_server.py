"""The admin listener beside the proxy: loopback by default, a port in use stops the start, it ends with the gateway."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import httpx
import pytest

from gateway.admin.server import start_admin
from gateway.audit.writer import AuditWriter
from gateway.errors import AdminError, GatewayError
from gateway.metrics import GatewayMetrics
from gateway.proxy import BackgroundGateway, GatewayConfig
from policies.loader import shipped_policy
from tests.gateway.admin.conftest import start
from tests.gateway.admin.seed import Seeded
from tests.servers import free_port


def test_the_default_is_loopback_port_8090() -> None:
    assert GatewayConfig(policy=shipped_policy("dev")).admin_listen == ("127.0.0.1", 8090)


def test_a_port_in_use_is_a_start_error(seeded: Seeded) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        writer = AuditWriter.open(seeded.url, home=seeded.home)
        try:
            with pytest.raises(AdminError, match="cannot listen on 127.0.0.1"):
                start_admin(taken.getsockname(), home=seeded.home, writer=writer, metrics=GatewayMetrics())
        finally:
            writer.close()


def test_listening_beyond_loopback_is_allowed_when_configured_and_warned(seeded: Seeded,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="modelgate.admin"):
        admin = start(seeded, listen=("0.0.0.0", 0))
    try:
        assert "beyond this machine" in caplog.text
    finally:
        admin.server.stop()
        admin.writer.close()


def test_the_gateway_serves_it_and_stops_it(seeded: Seeded, tmp_path: Path) -> None:
    port = free_port()
    config = GatewayConfig(policy=shipped_policy("dev"), upstream="http://127.0.0.1:9", home=seeded.home,
                           reverse_listen=("127.0.0.1", free_port()), proxy_listen=None,
                           admin_listen=("127.0.0.1", port))
    with BackgroundGateway(config) as gateway:
        assert gateway.admin_url == f"http://127.0.0.1:{port}"
        token = (seeded.home / "admin-token").read_text().strip()
        assert httpx.get(f"{gateway.admin_url}/api/tools", headers={"Authorization": f"Bearer {token}"}
                         ).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/login")


def test_a_gateway_whose_admin_port_is_taken_does_not_start(seeded: Seeded) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = GatewayConfig(policy=shipped_policy("dev"), upstream="http://127.0.0.1:9", home=seeded.home,
                               reverse_listen=("127.0.0.1", free_port()), proxy_listen=None,
                               admin_listen=taken.getsockname())
        with pytest.raises(GatewayError, match="cannot listen on .* for the admin UI"):
            with BackgroundGateway(config):
                pass
