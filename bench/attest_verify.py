"""Verification time per TEE evidence type, on the shared vendor vectors (informational).

    python bench/attest_verify.py [--rounds 50] [--json]

Each figure is the median wall time of ``appraise()`` on one evidence bundle: parsing, every signature and
certificate chain, collateral, TCB evaluation and the policy. The baseline, measured in the same run, is one
bare ECDSA P-384 signature verification with ``cryptography``; the ratio says how many such verifications'
worth of time a full appraisal costs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from attest.tee.appraisal import appraise
from attest.tee.detect import evidence_from_files, read_collateral_dir
from attest.tee.evidence import EvidenceBundle
from attest.tee.simulated import SimulatedProvider
from attest.tee.times import AppraisalTimes, parse_time
from policies.attestation import AttestationSection

VECTORS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "vectors" / "tee"
_PCS = {"sample_tcbInfo_response": "tcb_info.json", "tcbinfo_issuer_chain.pem": "tcb_info_chain.pem",
        "sample_qeIdentity_response": "qe_identity.json", "qeidentity_issuer_chain.pem": "qe_identity_chain.pem",
        "pckcrl": "pck_crl.der", "rootcrl.der": "root_crl.der"}


def median_ms(run: Callable[[], object], rounds: int) -> float:
    run()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


def bundles(folder: Path) -> dict[str, tuple[EvidenceBundle, str]]:
    """Each evidence type with the time at which its vector is valid."""
    snp, tdx, gpu = VECTORS / "sev-snp" / "go-sev-guest", VECTORS / "tdx" / "go-tdx-guest", VECTORS / "nvidia"
    for source, target in _PCS.items():
        (folder / target).write_bytes((tdx / source).read_bytes())
    return {
        "simulated": (EvidenceBundle(SimulatedProvider().collect(b"\0" * 64), "simulated"), "2026-12-01T00:00:00Z"),
        "sev-snp (VCEK, pinned ASK/ARK)": (evidence_from_files(
            (snp / "attestation.bin").read_bytes(), certificates=[(snp / "vcek.testcer").read_bytes()]),
            "2023-01-01T00:00:00Z"),
        "tdx quote v4 + PCS collateral": (evidence_from_files(
            (tdx / "tdx_prod_quote_SPR_E4.dat").read_bytes(), collateral=read_collateral_dir(folder)),
            "2023-07-01T00:00:00Z"),
        "nvidia-gpu (Hopper SPDM)": (evidence_from_files(
            (gpu / "nvtrust" / "hopperAttestationReport.txt").read_bytes(),
            certificates=[(gpu / "nvtrust" / "hopperCertChain.txt").read_bytes()]), "2024-06-01T00:00:00Z"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    key = ec.generate_private_key(ec.SECP384R1())
    signature = key.sign(b"\0" * 0x2A0, ec.ECDSA(hashes.SHA384()))
    baseline = median_ms(lambda: key.public_key().verify(signature, b"\0" * 0x2A0, ec.ECDSA(hashes.SHA384())),
                         args.rounds * 10)
    section = AttestationSection(required=(), allow_simulated=True, allow_debug=True)
    result: dict[str, object] = {"baseline_p384_verify_ms": round(baseline, 3), "rounds": args.rounds}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (bundle, at) in bundles(Path(tmp)).items():
            times = AppraisalTimes(parse_time(at))
            verdict = appraise(bundle, section, times, policy="bench")
            if not verdict.authentic:
                raise SystemExit(f"{name}: the vector did not verify: {verdict.violations}")
            ms = median_ms(lambda b=bundle, t=times: appraise(b, section, t, policy="bench"), args.rounds)
            result[name] = {"ms": round(ms, 3), "vs_one_p384_verify": round(ms / baseline, 1)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{'baseline: one ECDSA P-384 verify':40s} {baseline:8.3f} ms")
        for name, value in result.items():
            if isinstance(value, dict):
                print(f"{name:40s} {value['ms']:8.3f} ms  ({value['vs_one_p384_verify']}x baseline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
