"""``modelgate attest collect`` and ``modelgate attest verify``: capture evidence, judge it offline later."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from attest.errors import AttestError
from attest.tee.appraisal import AttestationVerdict, appraise
from attest.tee.binding import new_nonce
from attest.tee.detect import FORMATS, evidence_from_files, read_collateral_dir
from attest.tee.evidence import MAX_BUNDLE_BYTES, EvidenceBundle
from attest.tee.providers import choose_provider
from attest.tee.times import AppraisalTimes, parse_time
from policies.attestation import AttestationSection
from policies.loader import load_policy
from sbom.fileio import DocumentTooLarge, read_capped

__all__ = ["attest_app"]

attest_app = typer.Typer(help="TEE evidence: collect it in a confidential guest, verify it anywhere, offline.",
                         no_args_is_help=True)

_JSON = typer.Option(False, "--json", help="Print the result as JSON.")


@attest_app.command("collect")
def collect(
    output: Path = typer.Option(..., "-o", "--output", help="Evidence bundle to write (JSON)."),
    tee: str = typer.Option("auto", "--tee", help="configfs-tsm, simulated, or auto (configfs-tsm when present)."),
    nonce: str | None = typer.Option(None, "--nonce", help="Report data to ask for, hex, up to 64 bytes "
                                                            "[default: 32 random bytes]."),
    collateral: Path | None = typer.Option(None, "--collateral", help="Certificates and collateral to include."),
    as_json: bool = _JSON,
) -> None:
    """Capture this machine's TEE evidence for a nonce into a self-contained evidence bundle."""
    if tee == "replay":
        raise AttestError("collect captures new evidence; --tee replay only re-reads a bundle")
    value = _nonce(nonce) if nonce is not None else new_nonce()
    provider = choose_provider(tee, collateral=collateral)
    captured_at = datetime.now(UTC)
    bundle = EvidenceBundle(provider.collect(value.ljust(64, b"\0")), provider.name, captured_at=captured_at,
                            nonce=value)
    bundle.write(output)
    result = {"ok": True, "output": str(output), "provider": provider.name, "nonce": value.hex(),
              "platforms": [item.platform for item in bundle.items], "captured_at": captured_at.isoformat()}
    warning = "\n   [yellow]SIMULATED[/]: no hardware protects this machine" if bundle.simulated else ""
    _print(result, as_json, f"[green]ok[/] wrote {output}: {', '.join(result['platforms'])} evidence from "
                            f"{provider.name}, nonce {value.hex()}{warning}")


@attest_app.command("verify")
def verify(
    evidence: Path = typer.Argument(..., help="Evidence bundle, or a bare SNP report, TDX quote or GPU report."),
    at: str = typer.Option(..., "--at", help="Verification time (ISO 8601), or 'now' for this machine's clock."),
    cert: list[Path] = typer.Option([], "--cert", help="Certificates for bare evidence (VCEK, ASK, ARK; GPU chain)."),
    collateral: Path | None = typer.Option(None, "--collateral", help="Folder of collateral for bare evidence."),
    collateral_at: list[str] = typer.Option(
        [], "--collateral-at", metavar="NAME=TIME", help="Judge one piece of collateral at its own time (repeatable)."
    ),
    nonce: str | None = typer.Option(None, "--nonce", help="The nonce the evidence must answer (hex)."),
    policy_file: Path | None = typer.Option(None, "--policy", help="Policy whose attestation section applies "
                                                                   "[default: the fail-closed defaults]."),
    fmt: str | None = typer.Option(None, "--format", help=f"Evidence format: {', '.join(FORMATS)} [default: detect]."),
    as_json: bool = _JSON,
) -> None:
    """Verify TEE evidence offline: authentic, fresh and acceptable. Exit 0 only when all three hold."""
    policy = load_policy(policy_file) if policy_file else None
    section, name = (policy.attestation, policy.name) if policy else (AttestationSection(), "default")
    times = AppraisalTimes(parse_time(at), dict(_override(o) for o in collateral_at))
    expected_nonce = _nonce(nonce) if nonce else None
    bundle = evidence_from_files(_read(evidence), fmt=fmt, certificates=[_read(path) for path in cert],
                                 collateral=read_collateral_dir(collateral) if collateral else None)
    verdict = appraise(bundle, section, times, policy=name, expected_nonce=expected_nonce)
    result = {"ok": verdict.accepted, "evidence": str(evidence)} | verdict.to_json()
    _print(result, as_json, _human(verdict))
    if not verdict.accepted:
        raise typer.Exit(1)


def _human(verdict: AttestationVerdict) -> str:
    mark = "[green]accepted[/]" if verdict.accepted else "[bold red]refused[/]"
    lines = [f"{mark} {verdict.summary}"]
    yes = {True: "yes", False: "[red]no[/]"}
    lines.append(f"   authentic {yes[verdict.authentic]}   fresh {yes[verdict.fresh]}   "
                 f"acceptable {yes[verdict.acceptable]}")
    for result in verdict.results:
        claims = result.claims
        lines.append(f"   {claims.platform} {claims.format} (signer {claims.signer}, debug {claims.debug})")
        lines += [f"      {key:<13} {value}" for key, value in claims.measurements.items()]
        lines.append(f"      {'report_data':<13} {claims.report_data.hex()}")
    lines += [f"   - {v.check}: {v.reason}" for v in verdict.violations]
    return "\n".join(lines)


def _nonce(value: str) -> bytes:
    try:
        data = bytes.fromhex(value)
    except ValueError:
        raise AttestError(f"--nonce must be hex, not {value!r}") from None
    if not 1 <= len(data) <= 64:
        raise AttestError("--nonce must be 1 to 64 bytes")
    return data


def _override(spec: str) -> tuple[str, datetime]:
    name, sep, when = spec.partition("=")
    if not sep or not name:
        raise AttestError(f"--collateral-at takes NAME=TIME (e.g. tcb_info=2025-01-01T00:00:00Z), not {spec!r}")
    return name, parse_time(when, f"--collateral-at {name}")


def _read(path: Path) -> bytes:
    try:
        return read_capped(path, MAX_BUNDLE_BYTES)
    except (OSError, DocumentTooLarge) as exc:
        raise AttestError(f"cannot read {path}: {exc}") from None


def _print(result: dict[str, Any], as_json: bool, human: str) -> None:
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        Console(highlight=False, soft_wrap=True).print(human)
