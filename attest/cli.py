"""Commands of the attest package: ``keygen``, ``sign`` and ``verify``. Parse, call, print."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, cast

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console

from attest.bundle import CertificateSigner, KeylessSigner, KeySigner, Signer
from attest.errors import AttestError
from attest.keys import generate_private_key, key_id, load_private_key, save_private_key, save_public_key
from attest.signing import SignatureFormat, sign_model, write_bundle
from attest.tee.cli import attest_app
from attest.tee.times import parse_time
from attest.trust import TrustAnchors, load_certificates
from attest.verification import read_bundle, verify_model
from policies.loader import load_policy
from policies.schema import Policy, TrustSection
from sbom.bom import read_bom
from sbom.errors import SbomError
from sbom.inventory import scan_model
from sbom.progress import byte_progress

__all__ = ["register"]

# Without --policy, verification checks signature and files only, like `model_signing verify`.
_AD_HOC_POLICY = Policy(name="command-line", trust=TrustSection(require_sbom=False))

_JSON = typer.Option(False, "--json", help="Print the result as JSON (no progress bar).")
_IGNORE = typer.Option([], "--ignore-paths", help="Paths inside the model to leave out (repeatable).")
_PASSWORD_ENV = typer.Option(
    None, "--password-env", metavar="VAR", help="Environment variable holding the private key's password."
)


def keygen(
    output: Path = typer.Option(..., "-o", "--output", help="Private key file to write (PEM, mode 0600)."),
    key_type: str = typer.Option("ecdsa-p256", "--type", help="ecdsa-p256, ecdsa-p384 or ed25519."),
    public_output: Path | None = typer.Option(None, "--public-out", help="Public key file [default: *.pub.pem]."),
    password_env: str | None = _PASSWORD_ENV,
    as_json: bool = _JSON,
) -> None:
    """Generate a signing key pair for `modelgate sign --key`."""
    if key_type not in ("ecdsa-p256", "ecdsa-p384", "ed25519"):
        raise AttestError(f"--type must be ecdsa-p256, ecdsa-p384 or ed25519, not {key_type!r}")
    public_output = public_output or _public_name(output)
    key = generate_private_key(key_type)  # type: ignore[arg-type]
    save_private_key(output, key, _password(password_env))
    save_public_key(public_output, key.public_key())
    result = {"private_key": str(output), "public_key": str(public_output), "type": key_type,
              "key_id": key_id(key.public_key())}
    _print(result, as_json, f"[green]ok[/] wrote {output} (private, keep it secret) and {public_output}\n"
                            f"   key id {result['key_id']}")


def sign(
    model: Path = typer.Argument(..., help="Model folder or single model file (GGUF)."),
    output: Path = typer.Option(..., "-o", "--output", help="Sigstore bundle to write."),
    key: Path | None = typer.Option(None, "--key", help="Private key (PEM); with --cert, the certificate's key."),
    cert: Path | None = typer.Option(None, "--cert", help="Signing certificate (PEM); needs --key."),
    chain: Path | None = typer.Option(None, "--chain", help="Intermediate CA certificates (PEM)."),
    keyless: bool = typer.Option(False, "--keyless", help="Sigstore keyless signing (Fulcio + Rekor)."),
    identity_token: str | None = typer.Option(
        None, "--identity-token", envvar="SIGSTORE_ID_TOKEN", help="OIDC token for --keyless."
    ),
    trust_config: Path | None = typer.Option(None, "--trust-config", help="Sigstore client trust config (JSON)."),
    sbom: Path | None = typer.Option(None, "--sbom", help="CycloneDX ML-BOM to sign [default: generate one]."),
    fmt: str = typer.Option("modelgate", "--format", help="modelgate (in-toto + CycloneDX) or oms (OpenSSF)."),
    ignore_paths: list[Path] = _IGNORE,
    password_env: str | None = _PASSWORD_ENV,
    as_json: bool = _JSON,
) -> None:
    """Sign every file of a model into a Sigstore bundle (DSSE, in-toto Statement v1)."""
    if fmt not in ("modelgate", "oms"):
        raise AttestError(f"--format must be modelgate or oms, not {fmt!r}")
    if fmt == "oms" and sbom is not None:
        raise AttestError("--sbom cannot be used with --format oms: that format carries no SBOM")
    signer = _signer(key, cert, chain, keyless, identity_token, trust_config, _password(password_env), fmt)
    bom = read_bom(sbom) if sbom is not None else None
    ignore = [*ignore_paths, output.absolute()]
    with byte_progress(_total_size(model, ignore), "hashing", enabled=not as_json) as progress:
        outcome = sign_model(model, signer, format=cast(SignatureFormat, fmt), bom=bom, ignore=ignore,
                             progress=progress)
    write_bundle(outcome.bundle, output)
    result = {"ok": True, "model": str(model), "bundle": str(output)} | outcome.to_json()
    _print(result, as_json, f"[green]ok[/] signed {result['files']} files of {model} ({fmt} format) -> {output}")


def verify(
    model: Path = typer.Argument(..., help="Model folder or single model file."),
    bundle: Path = typer.Option(..., "--bundle", help="Sigstore bundle to verify against."),
    key: list[Path] = typer.Option([], "--key", help="Trusted public key (PEM), repeatable."),
    ca: list[Path] = typer.Option([], "--ca", help="Trusted root certificate (PEM), repeatable."),
    identity: list[str] = typer.Option(
        [], "--identity", help="Signer identity: with --issuer a keyless identity, with --ca a certificate name."
    ),
    issuer: str | None = typer.Option(None, "--issuer", help="OIDC issuer URL of a keyless signer."),
    trust_config: Path | None = typer.Option(None, "--trust-config", help="Sigstore client trust config (JSON)."),
    policy_file: Path | None = typer.Option(None, "--policy", help="Policy file; its trust is added to the flags'."),
    at: str | None = typer.Option(None, "--at", help="Verification time (ISO 8601) [default: now]."),
    ignore_paths: list[Path] = _IGNORE,
    as_json: bool = _JSON,
) -> None:
    """Verify that the files of a model are exactly the ones a trusted signer signed."""
    policy = load_policy(policy_file) if policy_file else _AD_HOC_POLICY
    anchors = TrustAnchors.from_flags(policy.trust, keys=key, ca=ca, identity=identity, issuer=issuer,
                                      trust_config=trust_config)
    data = read_bundle(bundle)
    ignore = [*ignore_paths, bundle.absolute()]
    when = parse_time(at) if at is not None else None
    with byte_progress(_total_size(model, ignore), "verifying", enabled=not as_json) as progress:
        verified = verify_model(model, data, anchors, policy, at=when, ignore=ignore, progress=progress)
    result = {"ok": True, "bundle": str(bundle)} | verified.to_json()
    signer = verified.signer
    summary = f"{result['files']} files, {result['bytes']:,} bytes ({verified.manifest.format})"
    _print(result, as_json,
           f"[green]verified[/] {model}: {summary}\n"
           f"   signer {signer.kind} {', '.join(signer.identity) or signer.key_id}\n"
           f"   time   {signer.time.isoformat()} ({signer.time_source})\n   policy {policy.name}")


def _signer(key: Path | None, cert: Path | None, chain: Path | None, keyless: bool, token: str | None,
            trust_config: Path | None, password: bytes | None, fmt: str) -> Signer:
    if keyless:
        if key or cert or chain:
            raise AttestError("--keyless cannot be combined with --key, --cert or --chain")
        if fmt == "oms":
            raise AttestError("--format oms is for key and certificate signing; keyless bundles use sigstore's own")
        if not token:
            raise AttestError("--keyless needs an OIDC identity token (--identity-token or $SIGSTORE_ID_TOKEN)")
        return KeylessSigner(token, trust_config)
    if key is None:
        raise AttestError("choose a signer: --key KEY.pem, --cert CERT.pem --key KEY.pem, or --keyless")
    private_key = load_private_key(key, password)
    if fmt == "oms" and isinstance(private_key, Ed25519PrivateKey):
        raise AttestError("--format oms needs an ECDSA key: the OpenSSF model-signing tool cannot verify Ed25519")
    if cert is None:
        if chain is not None:
            raise AttestError("--chain needs --cert")
        return KeySigner(private_key)
    certificates = load_certificates(cert) + (load_certificates(chain) if chain else ())
    return CertificateSigner(private_key, certificates)


def _total_size(model: Path, ignore: list[Path]) -> int | None:
    """For the progress bar only: a model that cannot be scanned is reported by signing or verification."""
    try:
        return scan_model(model, ignore).total_size
    except SbomError:
        return None


def _public_name(private: Path) -> Path:
    name = private.name
    for suffix in (".key.pem", ".pem"):
        if name.endswith(suffix):
            return private.with_name(name.removesuffix(suffix) + ".pub.pem")
    return private.with_name(name + ".pub")


def _password(env: str | None) -> bytes | None:
    if env is None:
        return None
    if (value := os.environ.get(env)) is None:
        raise AttestError(f"--password-env {env}: that environment variable is not set")
    return value.encode()


def _print(result: dict[str, Any], as_json: bool, human: str) -> None:
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        Console(highlight=False).print(human)


def register(app: typer.Typer) -> None:
    """Mount this package's commands on the root app."""
    app.command("keygen")(keygen)
    app.command("sign")(sign)
    app.command("verify")(verify)
    app.add_typer(attest_app, name="attest")

