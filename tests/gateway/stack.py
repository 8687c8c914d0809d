"""The gateway in this process in front of the scripted upstream, with its audit log on SQLite or PostgreSQL.

The end-to-end tests share it: real mitmproxy, real sockets, the real openai and anthropic clients.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import openai
from sqlalchemy import select

from gateway.addons.gatekeeper import Inspector
from gateway.audit.agents import add_agent
from gateway.audit.db import AuditDatabase, open_database
from gateway.audit.models import Record, RequestIndex
from gateway.proxy import BackgroundGateway, GatewayConfig
from policies.loader import load_policy
from tests.gateway.upstream import Upstream, upstream_app
from tests.servers import BackgroundServer, free_port

__all__ = ["Stack", "gateway_stack"]


@dataclass
class Stack:
    gateway: BackgroundGateway
    upstream: Upstream
    key: str
    db: AuditDatabase
    home: Path

    def records(self, kind: str | None = None) -> list[Record]:
        with self.db.sessions() as session:
            query = select(Record).order_by(Record.id)
            if kind is not None:
                query = query.where(Record.kind == kind)
            return list(session.scalars(query))

    def index(self, *, complete: int | None = None) -> list[RequestIndex]:
        """The request index; with ``complete``, once that many requests have their response recorded
        (responses are recorded after they are forwarded, asynchronously)."""
        deadline = time.monotonic() + 10
        while True:
            with self.db.sessions() as session:
                rows = list(session.scalars(select(RequestIndex).order_by(RequestIndex.id)))
            if complete is None or sum(r.status is not None for r in rows) >= complete or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)

    def openai(self, **kwargs: object) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.gateway.reverse_url}/v1", api_key=self.key, max_retries=0,
                             timeout=20, **kwargs)  # type: ignore[arg-type]

    @property
    def chat_url(self) -> str:
        return f"{self.gateway.reverse_url}/v1/chat/completions"

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key}"}


@contextmanager
def gateway_stack(folder: Path, policy: str, *, audit_url: str | None = None,
                  inspector: Inspector | None = None) -> Iterator[Stack]:
    """The scripted upstream and a gateway in front of it (both listeners), with one agent, ``tester``
    (``inspector``: in place of the policy's detection pipeline)."""
    (folder / "policy.yaml").write_text(policy)
    record = Upstream()
    server = BackgroundServer(upstream_app(record))
    home = folder / "home"
    db = open_database(audit_url, home=home)
    key = add_agent(db, "tester").key
    config = GatewayConfig(policy=load_policy(folder / "policy.yaml"), upstream=server.url,
                           reverse_listen=("127.0.0.1", free_port()), proxy_listen=("127.0.0.1", free_port()),
                           admin_listen=("127.0.0.1", free_port()), audit_url=audit_url, home=home,
                           inspector=inspector)
    try:
        with BackgroundGateway(config) as gateway:
            yield Stack(gateway, record, key, db, home)
    finally:
        server.stop()
        db.close()
