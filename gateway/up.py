"""``modelgate up``: everything on one machine, from nothing, in the order the guarantees need.

1. A development signing key, the gateway's CA and an agent key are created if missing (in the state
   folder, private files 0600).
2. The model (the default SmolLM2 unless given) is fetched, signed with the development key if it has no
   bundle, and verified.
3. The engine starts in its own process and loads the model only through the verified path, with TEE
   evidence from the machine's TEE, or from the simulated provider when the policy allows it.
4. The gateway starts in front of it, verifies the engine's attestation itself, records the model load
   in the audit log, and serves agents. Ctrl-C stops both, the audit log flushed and checkpointed.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from attest.bundle import KeySigner
from attest.keys import generate_private_key, load_private_key, save_private_key, save_public_key
from attest.signing import sign_model, write_bundle
from engine.model_cache import fetch_model
from gateway.addons.auth import UpstreamCredential
from gateway.audit.agents import add_agent, list_agents
from gateway.audit.db import open_database
from gateway.errors import EngineRefused, GatewayError
from gateway.proxy import GatewayConfig
from policies.loader import load_policy

__all__ = ["Stack", "UpOptions", "prepare", "start_engine", "stop_engine"]

_ENGINE_START_S = 300.0


@dataclass(frozen=True)
class UpOptions:
    home: Path
    policy_file: Path
    model: Path | None = None
    bundle: Path | None = None
    key: Path | None = None
    """Public key the bundle verifies with; default: the development key's."""
    audit_url: str | None = None
    engine_port: int = 8000
    listen: tuple[str, int] = ("127.0.0.1", 8080)
    proxy_listen: tuple[str, int] | None = ("127.0.0.1", 8081)
    admin_listen: tuple[str, int] | None = ("127.0.0.1", 8090)
    agent: str = "dev-agent"


@dataclass(frozen=True)
class Stack:
    """What ``prepare`` made: the inputs of the engine and the gateway, and the agent's key."""

    model: Path
    bundle: Path
    public_key: Path
    engine_token: str
    agent: str
    agent_key: str
    gateway: GatewayConfig


def prepare(options: UpOptions) -> Stack:
    """Keys, model, bundle, agent: create what is missing, reuse what exists."""
    home = options.home
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    model = options.model or fetch_model().path
    public = options.key or _dev_key(home)
    bundle = options.bundle or home / f"{model.name}.sigstore.json"
    if options.bundle is None and not bundle.exists():
        write_bundle(sign_model(model, KeySigner(load_private_key(home / "dev-signing.key.pem"))).bundle, bundle)
    token = _secret(home / "engine-token")
    agent_key = _agent_key(options, home)
    policy = load_policy(options.policy_file)
    config = GatewayConfig(policy=policy, upstream=f"http://127.0.0.1:{options.engine_port}",
                           upstream_credential=UpstreamCredential("Authorization", f"Bearer {token}"),
                           reverse_listen=options.listen, proxy_listen=options.proxy_listen,
                           audit_url=options.audit_url, home=home, check_engine=True,
                           admin_listen=options.admin_listen)
    return Stack(model, bundle, public, token, options.agent, agent_key, config)


def start_engine(stack: Stack, options: UpOptions) -> subprocess.Popen[bytes]:
    """The engine in its own process, serving once its model verified and its attestation held."""
    command = [sys.executable, "-m", "modelgate", "engine", "serve", "--model", str(stack.model), "--bundle",
               str(stack.bundle), "--key", str(stack.public_key), "--policy", str(options.policy_file),
               "--port", str(options.engine_port)]
    if _port_taken(options.engine_port):
        raise GatewayError(f"port {options.engine_port} is in use; choose another with --engine-port")
    log = options.home / "engine.log"
    with open(log, "wb") as output:  # a file, not a pipe: a pipe nobody reads would stall the engine
        process = subprocess.Popen(command, env=os.environ | {"MODELGATE_ENGINE_TOKEN": stack.engine_token},
                                   stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + _ENGINE_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            lines = log.read_text(errors="replace").strip().splitlines()
            said = next((line for line in reversed(lines) if line.startswith(("verification failed:", "error:"))),
                        "\n".join(lines[-20:]))
            raise EngineRefused(f"the engine refused to start (exit {process.returncode}; its log: {log}): {said}")
        try:
            if httpx.get(f"http://127.0.0.1:{options.engine_port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.25)
    process.kill()
    raise GatewayError(f"the engine did not answer /health within {_ENGINE_START_S:.0f}s")


def stop_engine(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _dev_key(home: Path) -> Path:
    private, public = home / "dev-signing.key.pem", home / "dev-signing.pub.pem"
    if not private.exists():
        key = generate_private_key("ecdsa-p256")
        save_private_key(private, key, None)
        save_public_key(public, key.public_key(), overwrite=True)
    return public


def _secret(path: Path) -> str:
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24))
    return path.read_text().strip()


def _agent_key(options: UpOptions, home: Path) -> str:
    """The development agent's key, kept in the state folder so that ``up`` prints the same one each time."""
    path = home / f"agent-{options.agent}.key"
    if path.exists():
        return path.read_text().strip()
    db = open_database(options.audit_url, home=home)
    try:
        if any(a.name == options.agent for a in list_agents(db)):
            raise GatewayError(f"agent {options.agent!r} exists but its key file {path} is gone; issue a new agent "
                               f"with --agent NAME or revoke it (modelgate agents revoke {options.agent})")
        issued = add_agent(db, options.agent)
    finally:
        db.close()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(issued.key)
    return issued.key


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
