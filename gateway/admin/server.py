"""The admin listener beside the proxy: uvicorn on its own thread and event loop, bound before mitmproxy starts.

Its own loop keeps a reviewer's heavy page (a dashboard over a month) off the proxy's loop; binding the
socket first makes a port in use a start-up error, not a silent gap. uvicorn on a thread installs no
signal handlers, so SIGINT and SIGTERM stay the gateway's.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from pathlib import Path

import uvicorn

from gateway.admin.app import AdminContext, admin_app
from gateway.admin.auth import AdminCredentials, admin_token
from gateway.admin.integrity import IntegrityChecker
from gateway.audit.holds import HeldCallStore
from gateway.audit.pins import DatabasePinStore
from gateway.audit.process import AuditLog
from gateway.errors import AdminError
from gateway.holds import Holds
from gateway.metrics import GatewayMetrics

__all__ = ["AdminServer", "start_admin"]

log = logging.getLogger("modelgate.admin")

_START_S = 10.0


class AdminServer:
    """uvicorn serving ``app`` on an already bound socket; ``stop`` waits for it to finish."""

    def __init__(self, sock: socket.socket, context: AdminContext) -> None:
        self.sock, self.context = sock, context
        config = uvicorn.Config(admin_app(context), lifespan="off", log_level="warning", access_log=False,
                                ws="none", server_header=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="modelgate-admin", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + _START_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise AdminError(f"the admin listener on {self.url} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(_START_S)
        self.sock.close()


def _bind(listen: tuple[str, int]) -> socket.socket:
    host, port = listen
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it; without it a keep-alive client waits out a delayed ACK (40 ms) for
    # the second write of every response.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise AdminError(f"cannot listen on {host}:{port} for the admin UI: {exc.strerror or exc}") from None
    sock.listen(128)
    return sock


def start_admin(listen: tuple[str, int], *, home: Path, writer: AuditLog, metrics: GatewayMetrics,
                holds: Holds | None = None, password: str | None = None,
                metrics_token: str | None = None) -> AdminServer:
    """Bind ``listen`` and serve the admin UI for ``writer``'s database (and ``holds``, the proxy's held calls,
    when it runs beside one); AdminError if it cannot."""
    try:
        loopback = ipaddress.ip_address(listen[0]).is_loopback
    except ValueError:
        loopback = listen[0] == "localhost"
    if not loopback:
        log.warning("the admin UI listens on %s:%d, beyond this machine: put TLS in front of it", *listen)
    credentials = AdminCredentials(admin_token(home), password, metrics_token)
    db = writer.database
    context = AdminContext(db, writer, DatabasePinStore(db), holds.store if holds else HeldCallStore(db), metrics,
                           IntegrityChecker(db, home), credentials, holds)
    server = AdminServer(_bind(listen), context)
    server.start()
    log.info("admin UI on %s (token in %s)", server.url, home / "admin-token")
    return server
