"""One mitmproxy process, two listeners: reverse mode in front of the engine, regular mode for agents' calls.

mitmproxy is embedded as a library (``DumpMaster`` with its default addons, no terminal log or dumper, and
a hook dispatch that skips the addons without the hook: ``gateway.dispatch``) and modelgate's addons run
in order: ``AgentAuth`` (who), ``EgressGuard`` (where to), ``Gatekeeper`` (judge, record, forward or
answer). Connections upstream are opened lazily, when the first request of a connection has been judged
and recorded, so nothing reaches an upstream before its record exists. Bodies are bounded by the largest
``max_request_bytes`` / ``max_response_bytes`` of the policy.

    >>> config = GatewayConfig(policy=shipped_policy("dev"), upstream="http://127.0.0.1:8000")  # doctest: +SKIP
    >>> with BackgroundGateway(config) as gateway:                                             # doctest: +SKIP
    ...     print(gateway.reverse_url, gateway.proxy_url)
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from mitmproxy import hooks, options
from mitmproxy.tools.dump import DumpMaster

from gateway.addons.auth import AgentAuth, UpstreamCredential
from gateway.addons.egress import EgressGuard
from gateway.addons.gatekeeper import Gatekeeper, Inspector
from gateway.admin.server import AdminServer, start_admin
from gateway.audit.agents import AgentStore
from gateway.audit.db import default_home
from gateway.audit.holds import HeldCallStore
from gateway.audit.pins import DatabasePinStore
from gateway.audit.process import AuditProcess
from gateway.audit.writer import WriterConfig
from gateway.detect.mcp_pinning import ToolPinStore
from gateway.dispatch import lean_dispatch
from gateway.engine_link import EngineAttestation, check_engine
from gateway.errors import GatewayError
from gateway.holds import Holds
from gateway.inspection import build_pipeline
from gateway.metrics import GatewayMetrics
from gateway.protocols import Limits
from policies.schema import Policy

__all__ = ["BackgroundGateway", "GatewayConfig", "ca_certificate", "run_gateway"]

log = logging.getLogger("modelgate.gateway")


@dataclass(frozen=True)
class GatewayConfig:
    policy: Policy
    upstream: str = "http://127.0.0.1:8000"
    """Where reverse mode forwards: the engine, or another OpenAI-compatible or Anthropic endpoint."""
    upstream_credential: UpstreamCredential | None = None
    """Sent upstream in place of the agent's key (e.g. ``Authorization: Bearer <engine token>``)."""
    reverse_listen: tuple[str, int] = ("127.0.0.1", 8080)
    proxy_listen: tuple[str, int] | None = ("127.0.0.1", 8081)
    audit_url: str | None = None
    """SQLAlchemy URL of the audit database; None: SQLite under ``home``."""
    home: Path | None = None
    """The gateway's state folder (audit key, witness, CA); None: ``$MODELGATE_HOME`` or ``~/.modelgate``."""
    upstream_ca: Path | None = None
    """PEM bundle that replaces the system roots for verifying upstream TLS (a private CA)."""
    inspector: Inspector | None = None
    """The detection pipeline; None: the one ``gateway.inspection`` builds from the policy (unless disabled)."""
    pins: ToolPinStore | None = None
    """Where MCP tool pins live; None: the audit database, so quarantines survive restarts and are shared."""
    check_engine: bool = False
    """The upstream is a modelgate engine: verify its attestation at start and record its model load."""
    engine: EngineAttestation | None = None
    """The upstream engine, already verified by the caller: its model load is recorded at start."""
    admin_listen: tuple[str, int] | None = ("127.0.0.1", 8090)
    """The admin UI and ``/metrics`` (None: off). Loopback unless configured; the token is ``home/admin-token``."""
    admin_password: str | None = field(default=None, repr=False)
    """A password accepted beside the admin token at the login form."""
    metrics_token: str | None = field(default=None, repr=False)
    """A Bearer token for ``/metrics`` only (for Prometheus), beside the admin token."""

    @property
    def state_dir(self) -> Path:
        return self.home or default_home()

    def options(self) -> options.Options:
        """The options mitmproxy itself knows; those its addons add are in ``addon_options``."""
        modes = [f"reverse:{self.upstream}@{self.reverse_listen[0]}:{self.reverse_listen[1]}"]
        if self.proxy_listen is not None:
            modes.append(f"regular@{self.proxy_listen[0]}:{self.proxy_listen[1]}")
        return options.Options(mode=modes, confdir=str(self.state_dir / "ca"))

    def addon_options(self) -> dict[str, object]:
        profiles = self.policy.gateway.profiles
        body_limit = max((max(p.max_request_bytes, p.max_response_bytes) for p in profiles), default=16 << 20)
        extra: dict[str, object] = {"connection_strategy": "lazy", "body_size_limit": str(body_limit)}
        if self.upstream_ca is not None:
            extra["ssl_verify_upstream_trusted_ca"] = str(self.upstream_ca)
        return extra


def ca_certificate(home: Path | None = None) -> Path:
    """The CA certificate agents must trust for HTTPS interception (created by the first gateway start)."""
    return (home or default_home()) / "ca" / "mitmproxy-ca-cert.pem"


async def run_gateway(config: GatewayConfig, *, started: Callable[[DumpMaster], None] | None = None) -> None:
    """Serve until the master is shut down; the audit writer's process is flushed and closed on the way out.

    ``started`` is called once every listener is up (and the CA exists).
    """
    writer = await asyncio.to_thread(AuditProcess.open, config.audit_url, home=config.home, config=WriterConfig(
        checkpoint_every=config.policy.gateway.audit.checkpoint_every_records,
        checkpoint_interval_s=config.policy.gateway.audit.checkpoint_interval_s,
        body_cap=config.policy.gateway.audit.body_cap_bytes))
    metrics = GatewayMetrics()
    store: AgentStore | None = None
    admin: AdminServer | None = None
    try:
        if config.engine is not None or config.check_engine:
            await _record_engine(config, writer, metrics)
        store = AgentStore(writer.database)
        holds = Holds(HeldCallStore(writer.database), writer, config.policy.gateway.holds)
        await holds.expire_stale()  # what this instance held before a restart: its flows are gone
        inspector = config.inspector
        if inspector is None and config.policy.detection.enabled:
            inspector = await asyncio.to_thread(build_pipeline, config.policy, writer.database,
                                                config.pins or DatabasePinStore(writer.database))
        if config.admin_listen is not None:  # before mitmproxy's master, which logs through its own loop
            admin = await asyncio.to_thread(start_admin, config.admin_listen, home=config.state_dir, writer=writer,
                                            metrics=metrics, holds=holds, password=config.admin_password,
                                            metrics_token=config.metrics_token)
    except BaseException:
        if store is not None:
            store.close()
        await writer.aclose()
        raise
    master = DumpMaster(config.options(), with_termlog=False, with_dumper=False)
    master.options.update(**config.addon_options())
    lean_dispatch(master.addons)
    auth = AgentAuth(store, config.upstream_credential)
    addons: list[object] = [auth, EgressGuard(config.policy, auth),
                            Gatekeeper(config.policy, writer, inspector=inspector, limits=Limits(), metrics=metrics,
                                       holds=holds)]
    if started is not None:
        addons.append(_Running(lambda: started(master)))
    master.addons.add(_Addons(addons))
    try:
        await master.run()
    finally:
        await _close_connections(master)
        if admin is not None:
            await asyncio.to_thread(admin.stop)
        store.close()
        await writer.aclose()


class _Addons:
    """modelgate's addons as one entry of mitmproxy's chain, which visits every entry on every hook and again on
    every flow update (``gateway.dispatch`` makes a visit without the hook a lookup; mitmproxy's own dispatch,
    a coroutine and an error guard: there one entry instead of four saved ~40 µs a request). The entry's
    addons run in order and one's error stops the others on that hook, so no two may have the same hook (they
    do not: each hook has its own addon)."""

    def __init__(self, addons: list[object]) -> None:
        shared = [name for name in hooks.all_hooks if sum(callable(getattr(a, name, None)) for a in addons) > 1]
        if shared:
            raise ValueError(f"more than one of the gateway's addons has the hook(s) {shared}")
        self.addons = addons


class _Running:
    """Calls back once mitmproxy is listening on every mode (its ``running`` hook)."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback

    def running(self) -> None:
        self.callback()


async def _close_connections(master: DumpMaster) -> None:
    """mitmproxy leaves its listeners and open connections to the garbage collector at shutdown; close them,
    so that agents see their connections end and no socket outlives the gateway."""
    proxyserver = master.addons.get("proxyserver")
    if proxyserver is None:
        return
    await proxyserver.servers.update([])
    for handler in list(proxyserver.connections.values()):
        for io in handler.transports.values():
            if io.writer is not None:
                io.writer.close()
    await asyncio.sleep(0)


async def _record_engine(config: GatewayConfig, writer: AuditProcess, metrics: GatewayMetrics) -> None:
    """Refuse to front an engine whose attestation does not hold; record its model load either way."""
    engine = config.engine
    if engine is None:
        token = config.upstream_credential.value.removeprefix("Bearer ") if config.upstream_credential else ""
        try:
            engine = await asyncio.to_thread(check_engine, config.upstream, token, config.policy)
        except GatewayError as exc:
            await writer.record_event("engine.refused", data={"upstream": config.upstream, "reason": exc.reason})
            raise
    await writer.record_model_load(engine.record)
    metrics.model_load(str(engine.record.get("decision")))
    log.info("engine %s: %s", config.upstream, engine.verdict.summary)


class BackgroundGateway:
    """The gateway on its own thread and event loop: for ``modelgate up`` beside the engine, and for tests."""

    def __init__(self, config: GatewayConfig, *, timeout_s: float = 30.0) -> None:
        self.config, self._timeout = config, timeout_s
        self._master: DumpMaster | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="modelgate-gateway", daemon=True)

    @property
    def reverse_url(self) -> str:
        host, port = self.config.reverse_listen
        return f"http://{host}:{port}"

    @property
    def proxy_url(self) -> str | None:
        if self.config.proxy_listen is None:
            return None
        host, port = self.config.proxy_listen
        return f"http://{host}:{port}"

    @property
    def admin_url(self) -> str | None:
        if self.config.admin_listen is None:
            return None
        host, port = self.config.admin_listen
        return f"http://{host}:{port}"

    def __enter__(self) -> BackgroundGateway:
        self._thread.start()
        if not self._ready.wait(self._timeout) or self._master is None:
            self.__exit__(None, None, None)
            raise GatewayError(f"the gateway did not start: {self._failure or 'timed out'}")
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._master is not None:
            self._master.shutdown()
        self._thread.join(self._timeout)

    def _run(self) -> None:
        def started(master: DumpMaster) -> None:
            self._master = master
            self._ready.set()

        try:
            asyncio.run(run_gateway(self.config, started=started))
        except BaseException as exc:  # noqa: BLE001 - reported to the thread that waits for the start
            self._failure = exc
            log.error("the gateway stopped: %s", exc)
        finally:
            self._ready.set()
