"""A real admin listener on a seeded audit log: uvicorn on a loopback socket, the real writer and database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from gateway.admin.server import AdminServer, start_admin
from gateway.audit.holds import HeldCallStore
from gateway.audit.models import RequestIndex
from gateway.audit.writer import AuditWriter
from gateway.events import RequestEvent, ToolCall
from gateway.findings import Finding
from gateway.metrics import GatewayMetrics
from tests.gateway.admin.seed import Seeded, seed
from tests.gateway.audit.conftest import audit_url, home, pg_schema_url  # noqa: F401 - fixtures used here

METRICS_TOKEN = "scrape-me-please"
_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


@dataclass
class Admin:
    server: AdminServer
    writer: AuditWriter
    metrics: GatewayMetrics
    seeded: Seeded

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def token(self) -> str:
        return (self.seeded.home / "admin-token").read_text().strip()

    def queue(self) -> int:
        """Quarantined tools waiting for review."""
        return len([r for r in self.server.context.pins.quarantined() if not r.rejected])

    def bearer(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=20)

    @contextmanager
    def browser(self) -> Iterator[tuple[httpx.Client, str]]:
        """A client logged in through the form, as a browser is: its session cookie, and a CSRF token."""
        with httpx.Client(base_url=self.url, headers={"Accept": "text/html"}, timeout=20) as client:
            answer = client.post("/login", data={"secret": self.token, "next": "/requests"})
            assert answer.status_code == 303 and answer.headers["location"] == "/requests"
            match = _CSRF.search(client.get("/requests").text)
            assert match is not None and match[1]
            yield client, match[1]


def held_call(admin: Admin, request_id: str | None = None) -> int:
    """A call held by another gateway on this database (the listener has no proxy beside it)."""
    store = HeldCallStore(admin.writer.database)
    with admin.writer.database.sessions() as session:
        known = request_id or session.scalars(select(RequestIndex.request_id).limit(1)).one()
    event = RequestEvent(request_id=known, agent="billing-bot", session="s-9", protocol="mcp", direction="forward",
                         method="POST", scheme="https", host="pay.internal", port=443, path="/mcp")
    call = ToolCall(name="send_money", arguments_raw='{"iban": "DE89370400440532013000", "amount": 900}',
                    server="pay.internal/mcp")
    held = Finding(rule="policy.tool_held", action="hold", reason="tool 'send_money' waits for a reviewer")
    return store.hold(event, "request", [call], [held], instance_id="gateway-b", timeout_s=300).id


def start(seeded: Seeded, *, listen: tuple[str, int] = ("127.0.0.1", 0), **options: str) -> Admin:
    writer = AuditWriter.open(seeded.url, home=seeded.home)
    metrics = GatewayMetrics()
    try:
        server = start_admin(listen, home=seeded.home, writer=writer, metrics=metrics, **options)
    except BaseException:
        writer.close()
        raise
    return Admin(server, writer, metrics, seeded)


@pytest.fixture()
def seeded(tmp_path: Path) -> Seeded:
    state = tmp_path / "home"
    return seed(f"sqlite:///{state / 'audit.db'}", state)


def _running(seeded: Seeded, **options: str) -> Iterator[Admin]:
    running = start(seeded, **options)
    try:
        yield running
    finally:
        running.server.stop()
        running.writer.close()


@pytest.fixture()
def admin(seeded: Seeded) -> Iterator[Admin]:
    yield from _running(seeded)


@pytest.fixture(scope="module")
def reading(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admin]:
    """One seeded listener for a module of tests that only read."""
    state = tmp_path_factory.mktemp("reading") / "home"
    yield from _running(seed(f"sqlite:///{state / 'audit.db'}", state))


@pytest.fixture()
def admin_with_extras(seeded: Seeded) -> Iterator[Admin]:
    """With a password beside the token, and a metrics-only token."""
    yield from _running(seeded, password="correct horse battery staple", metrics_token=METRICS_TOKEN)
