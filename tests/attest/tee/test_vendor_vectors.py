"""The shared vendor vectors through ``modelgate attest verify``: the verdicts the vectors' README states.

These run the whole path a user runs: format detection, the collateral folder, per-collateral times,
the platform verifier and the policy appraisal, down to the JSON fields and the exit code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attest.tee.tdx.quote import parse_quote
from modelgate.cli import main
from tests.conftest import shared_path


def _tee(*parts: str) -> Path:
    return shared_path("vectors", "tee", *parts)


def _verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    rc = main(["attest", "verify", *args, "--json"])
    return rc, json.loads(capsys.readouterr().out)


def _collateral(folder: Path, tcb_info: str) -> Path:
    """go-tdx-guest's PCS sample responses, under the part names modelgate reads from a collateral folder."""
    names = {tcb_info: "tcb_info.json", "tcbinfo_issuer_chain.pem": "tcb_info_chain.pem",
             "sample_qeIdentity_response": "qe_identity.json", "qeidentity_issuer_chain.pem": "qe_identity_chain.pem",
             "pckcrl": "pck_crl.der", "rootcrl.der": "root_crl.der"}
    folder.mkdir()
    for source, target in names.items():
        (folder / target).write_bytes(_tee("tdx", "go-tdx-guest", source).read_bytes())
    return folder


def _report_data(quote: Path) -> str:
    return parse_quote(quote.read_bytes()).body.report_data.hex()


def test_the_spr_quote_is_authentic_and_matches_no_tcb_level(tmp_path: Path, capsys) -> None:
    quote = _tee("tdx", "go-tdx-guest", "tdx_prod_quote_SPR_E4.dat")
    rc, out = _verify(capsys, str(quote), "--collateral", str(_collateral(tmp_path / "c", "sample_tcbInfo_response")),
                      "--at", "2023-07-01T00:00:00Z", "--nonce", _report_data(quote))
    assert rc == 1 and out["format"] == "tdx-quote-v4" and out["authentic"] and out["fresh"]
    assert out["tcb"]["qe_status"] == "UpToDate" and set(out["measurement"]) >= {"mrtd", "rtmr0", "rtmr3"}
    assert [v["check"] for v in out["violations"]] == ["acceptable"]
    assert "no matching TCB level" in out["violations"][0]["reason"]


def test_the_v5_quote_needs_per_collateral_times(tmp_path: Path, capsys) -> None:
    quote = _tee("tdx", "go-tdx-guest", "quote_v5_sample.dat")
    folder = _collateral(tmp_path / "c", "sample_tcbinfo_response_v5")
    args = [str(quote), "--collateral", str(folder), "--at", "2026-02-03T00:00:00Z", "--nonce", _report_data(quote)]
    rc, out = _verify(capsys, *args)
    assert rc == 1 and out["format"] == "tdx-quote-v5" and out["authentic"] and not out["fresh"]
    overrides = ["tcb_info_chain=2025-05-01T00:00:00Z"] + [f"{name}=2023-07-01T00:00:00Z" for name in (
        "qe_identity", "qe_identity_chain", "pck_crl", "root_crl")]
    rc, out = _verify(capsys, *args, *(x for o in overrides for x in ("--collateral-at", o)))
    assert rc == 0 and out["accepted"] and out["tcb"]["status"] == "UpToDate", out["violations"]


def test_the_debug_td_is_refused_by_the_defaults(capsys) -> None:
    quote = _tee("tdx", "trustee", "tdx_quote_4.dat")
    rc, out = _verify(capsys, str(quote), "--at", "2023-07-01T00:00:00Z", "--nonce", _report_data(quote))
    assert rc == 1 and out["authentic"] and out["debug"]
    assert any("the guest is debuggable" in v["reason"] for v in out["violations"])


def test_a_tdreport_is_not_evidence(capsys) -> None:
    rc, out = _verify(capsys, str(_tee("tdx", "go-tdx-guest", "report.dat")), "--at", "2023-07-01T00:00:00Z",
                      "--nonce", "00")
    assert rc == 1 and not out["authentic"] and "TDREPORT" in out["violations"][0]["reason"]


def test_the_hopper_report_is_authentic_and_meets_a_gpu_requirement(tmp_path: Path, capsys) -> None:
    report, chain = _tee("nvidia", "nvtrust", "hopperAttestationReport.txt"), _tee("nvidia", "nvtrust",
                                                                                     "hopperCertChain.txt")
    nonce = bytes.fromhex(report.read_text())[4:36].hex()  # GET_MEASUREMENTS: 4 header bytes, then the nonce
    args = [str(report), "--cert", str(chain), "--at", "2024-06-01T00:00:00Z", "--nonce", nonce]
    rc, out = _verify(capsys, *args)
    assert rc == 1 and out["authentic"] and out["fresh"] and out["platform"] == "nvidia-gpu"
    assert [v["reason"] for v in out["violations"]] == [
        "policy 'default' requires authentic evidence of sev-snp or tdx; none was given"]
    (tmp_path / "gpu.yaml").write_text("name: gpu\nattestation: {required: [[nvidia-gpu]]}\n")
    rc, out = _verify(capsys, *args, "--policy", str(tmp_path / "gpu.yaml"))
    assert rc == 0 and out["accepted"] and out["items"][0]["details"]["driver_version"] == "550.90.07"


def test_a_gpu_chain_without_its_intermediate_is_refused(capsys) -> None:
    report = _tee("nvidia", "nvtrust", "hopperAttestationReport.txt")
    rc, out = _verify(capsys, str(report), "--cert", str(_tee("nvidia", "trustee", "hopper_cert_chain_case3.txt")),
                      "--at", "2024-06-01T00:00:00Z", "--nonce", "00")
    assert rc == 1 and not out["authentic"]
