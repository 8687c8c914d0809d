"""Commands of the gateway package: ``gateway run``, ``ca export``, ``up``, and the audit and agents groups."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import signal
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console

import gateway.audit.agents_cli
import gateway.audit.cli
from gateway.addons.auth import UpstreamCredential
from gateway.engine_link import check_engine
from gateway.errors import GatewayError
from gateway.proxy import GatewayConfig, ca_certificate, run_gateway
from policies.loader import load_policy

__all__ = ["register"]

_STATE_DIR = typer.Option(None, "--state-dir", help="The gateway's state folder [default: $MODELGATE_HOME or "
                                                     "~/.modelgate].")

_AUDIT_DB = typer.Option(None, "--audit-db", help="Audit database URL [default: SQLite in --state-dir].")

gateway_app = typer.Typer(help="The mitmproxy gateway in front of the engine and agents' outbound calls.",
                          no_args_is_help=True)
ca_app = typer.Typer(help="The CA certificate agents trust for HTTPS interception.", no_args_is_help=True)


def parse_listen(value: str, what: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``PORT`` (loopback)."""
    host, sep, port = value.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise GatewayError(f"{what} must be HOST:PORT or PORT, not {value!r}") from None
    if not 0 <= number <= 65535:
        raise GatewayError(f"{what}: port {number} is out of range")
    return (host.strip("[]") if sep else "127.0.0.1") or "127.0.0.1", number


def secret_from(env: str | None, what: str) -> str | None:
    """A secret from an environment variable named on the command line (never the secret itself)."""
    if env is None:
        return None
    value = os.environ.get(env)
    if not value:
        raise GatewayError(f"${env} is empty or unset; it must hold the {what}")
    return value


def credential(env: str | None, header: str) -> UpstreamCredential | None:
    """The upstream's credential from an environment variable, as ``Bearer`` for Authorization."""
    value = secret_from(env, "upstream's API key or token")
    if value is None:
        return None
    return UpstreamCredential(header, f"Bearer {value}" if header.lower() == "authorization" else value)


def serve_forever(config: GatewayConfig, *, listening: Callable[[], None] | None = None) -> None:
    """Run the gateway on this thread until SIGINT or SIGTERM, then shut down cleanly; ``listening`` is called
    once every listener accepts connections (what to tell the user, who may connect at once)."""

    def started(master: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, master.shutdown)  # type: ignore[attr-defined]
        # What the start loaded lives as long as the process (policy, detectors and their baseline, mitmproxy,
        # SQLAlchemy: ~340k objects). Out of the collector's reach, a full collection on the event loop scans
        # what requests made, in milliseconds, not all of that (0.2 s each, ~80 us a request at 600 req/s).
        gc.collect()
        gc.freeze()
        if listening is not None:
            listening()

    asyncio.run(run_gateway(config, started=started))


@gateway_app.command("run")
def run(
    policy_file: Path = typer.Option(..., "--policy", help="Policy file (its gateway section governs agents)."),
    upstream: str = typer.Option("http://127.0.0.1:8000", "--upstream",
                                 help="Reverse mode's upstream: the engine or another OpenAI/Anthropic endpoint."),
    upstream_key_env: str | None = typer.Option(
        "MODELGATE_ENGINE_TOKEN", "--upstream-key-env", metavar="VAR",
        help="Environment variable with the upstream's key, sent in place of the agent's (empty: none)."),
    upstream_header: str = typer.Option("Authorization", "--upstream-header",
                                        help="Header for the upstream's key (x-api-key for Anthropic)."),
    engine_check: bool = typer.Option(True, "--engine-check/--no-engine-check",
                                      help="Verify the upstream engine's attestation and record its model load."),
    listen: str = typer.Option("127.0.0.1:8080", "--listen", help="Reverse-mode listener (HOST:PORT)."),
    proxy_listen: str = typer.Option("127.0.0.1:8081", "--proxy-listen",
                                     help="Forward-proxy listener (HOST:PORT), or 'off'."),
    audit_db: str | None = _AUDIT_DB,
    home: Path | None = _STATE_DIR,
    upstream_ca: Path | None = typer.Option(None, "--upstream-ca", help="PEM roots for upstream TLS (replace the "
                                                                        "system's)."),
    admin_listen: str = typer.Option("127.0.0.1:8090", "--admin-listen",
                                     help="Admin UI and /metrics (HOST:PORT), or 'off'. Token: HOME/admin-token."),
    admin_password_env: str | None = typer.Option(None, "--admin-password-env", metavar="VAR",
                                                  help="Environment variable with an admin password (beside the "
                                                       "token)."),
    metrics_token_env: str | None = typer.Option(None, "--metrics-token-env", metavar="VAR",
                                                 help="Environment variable with a Bearer token for /metrics only."),
) -> None:
    """Serve until interrupted: every request identified, judged, recorded, then forwarded."""
    config = GatewayConfig(
        policy=load_policy(policy_file), upstream=upstream,
        upstream_credential=credential(upstream_key_env or None, upstream_header),
        reverse_listen=parse_listen(listen, "--listen"),
        proxy_listen=None if proxy_listen == "off" else parse_listen(proxy_listen, "--proxy-listen"),
        audit_url=audit_db, home=home, upstream_ca=upstream_ca, check_engine=engine_check,
        admin_listen=None if admin_listen == "off" else parse_listen(admin_listen, "--admin-listen"),
        admin_password=secret_from(admin_password_env, "admin password"),
        metrics_token=secret_from(metrics_token_env, "metrics token"),
    )
    console = Console(stderr=True, highlight=False)
    serve_forever(config, listening=lambda: console.print(
        f"[green]gateway[/] reverse http://{config.reverse_listen[0]}:{config.reverse_listen[1]} -> {upstream}"
        + (f", proxy http://{config.proxy_listen[0]}:{config.proxy_listen[1]}" if config.proxy_listen else "")
        + (f", admin http://{config.admin_listen[0]}:{config.admin_listen[1]} (token in "
           f"{config.state_dir / 'admin-token'})" if config.admin_listen else "")))


@ca_app.command("export")
def export(
    output: Path | None = typer.Option(None, "-o", "--output", help="Write the PEM here [default: stdout]."),
    home: Path | None = _STATE_DIR,
) -> None:
    """Print the gateway's CA certificate (created if missing) for agents to trust."""
    from mitmproxy.certs import CertStore

    path = ca_certificate(home)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    CertStore.from_store(path.parent, "mitmproxy", 2048)  # creates the CA on first use, as the proxy would
    pem = path.read_text()
    if output is None:
        typer.echo(pem, nl=False)
    else:
        output.write_text(pem)
        Console(stderr=True, highlight=False).print(f"[green]ok[/] wrote {output}")


def up(
    policy_file: Path | None = typer.Option(None, "--policy", help="Policy file [default: policies/dev.yaml]."),
    model: Path | None = typer.Option(None, "--model", help="Model folder or GGUF [default: the default model]."),
    bundle: Path | None = typer.Option(None, "--bundle", help="Its Sigstore bundle [default: sign it with the "
                                                              "development key]."),
    key: Path | None = typer.Option(None, "--key", help="Public key the bundle verifies with."),
    audit_db: str | None = _AUDIT_DB,
    home: Path | None = _STATE_DIR,
    engine_port: int = typer.Option(8000, "--engine-port"),
    listen: str = typer.Option("127.0.0.1:8080", "--listen", help="The agents' LLM endpoint (HOST:PORT)."),
    proxy_listen: str = typer.Option("127.0.0.1:8081", "--proxy-listen", help="Forward proxy (HOST:PORT) or 'off'."),
    admin_listen: str = typer.Option("127.0.0.1:8090", "--admin-listen", help="Admin UI (HOST:PORT) or 'off'."),
    agent: str = typer.Option("dev-agent", "--agent", help="The agent whose key is created and printed."),
) -> None:
    """Sign, verify, attest and serve a model behind the gateway, with the audit log; Ctrl-C stops it all."""
    from gateway.audit.db import default_home
    from gateway.up import UpOptions, prepare, start_engine, stop_engine
    from policies.loader import shipped_policy_path

    options = UpOptions(
        home=home or default_home(), policy_file=policy_file or shipped_policy_path("dev"), model=model,
        bundle=bundle, key=key, audit_url=audit_db, engine_port=engine_port, listen=parse_listen(listen, "--listen"),
        proxy_listen=None if proxy_listen == "off" else parse_listen(proxy_listen, "--proxy-listen"), agent=agent,
        admin_listen=None if admin_listen == "off" else parse_listen(admin_listen, "--admin-listen"))
    console = Console(highlight=False, soft_wrap=True)  # commands to paste must not be wrapped
    stack = prepare(options)
    console.print(f"[green]model[/]    {stack.model} (bundle {stack.bundle})")
    process = start_engine(stack, options)
    try:
        engine = check_engine(stack.gateway.upstream, stack.engine_token, stack.gateway.policy)
        console.print(f"[green]attested[/] {engine.verdict.summary}")
        config = dataclasses.replace(stack.gateway, engine=engine)
        reverse = f"http://{config.reverse_listen[0]}:{config.reverse_listen[1]}/v1"
        proxy = f"http://{config.proxy_listen[0]}:{config.proxy_listen[1]}" if config.proxy_listen else "off"
        admin = f"http://{config.admin_listen[0]}:{config.admin_listen[1]}" if config.admin_listen else "off"
        banner = _banner(reverse, proxy, admin, stack.model.name, stack.agent, stack.agent_key, config.state_dir)
        serve_forever(config, listening=lambda: console.print(banner))
    except KeyboardInterrupt:  # Ctrl-C is how `up` is stopped, also while it is still starting
        pass
    finally:
        stop_engine(process)
        console.print("[green]stopped[/] gateway and engine; the audit log is checkpointed")


def _banner(reverse: str, proxy: str, admin: str, model: str, agent: str, key: str, home: Path) -> str:
    return f"""[green]engine[/]   verified and serving (the gateway's upstream only; its log: {home}/engine.log)
[green]gateway[/]  {reverse}   (agents: OPENAI_BASE_URL={reverse})
[green]proxy[/]    {proxy}   (HTTPS_PROXY=http://{agent}:<key>@..., CA: modelgate ca export --state-dir {home})
[green]agent[/]    {agent}, key {key}
[green]audit[/]    MODELGATE_HOME={home} modelgate audit list | audit verify
[green]admin[/]    {admin}   (token: {home / "admin-token"})

Try:
curl -s {reverse}/chat/completions -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
  -d '{{"model": "{model}", "messages": [{{"role": "user", "content": "What is the capital of France?"}}], \\
       "temperature": 0}}'

python -c 'import openai; c = openai.OpenAI(base_url="{reverse}", api_key="{key}"); \\
print(c.chat.completions.create(model="{model}", temperature=0, \\
      messages=[{{"role": "user", "content": "What is the capital of France?"}}]).choices[0].message.content)'

Ctrl-C stops the gateway and the engine."""


def register(app: typer.Typer) -> None:
    """Mount this package's commands on the root app."""
    app.add_typer(gateway_app, name="gateway")
    app.add_typer(ca_app, name="ca")
    app.command("up")(up)
    gateway.audit.cli.register(app)
    gateway.audit.agents_cli.register(app)
