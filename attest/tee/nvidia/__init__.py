"""NVIDIA confidential-computing GPUs (Hopper, Blackwell): SPDM attestation reports, device chains and RIMs.

    >>> from datetime import UTC, datetime
    >>> from pathlib import Path
    >>> from attest.tee.nvidia import verify_gpu
    >>> from attest.tee.times import AppraisalTimes
    >>> from policies.attestation import GpuRules
    >>> result = verify_gpu(
    ...     Path("hopperAttestationReport.txt").read_bytes(),
    ...     certificate_chain=Path("hopperCertChain.txt").read_bytes(),
    ...     rules=GpuRules(min_driver_version="550.90.07"),
    ...     times=AppraisalTimes(datetime(2024, 6, 1, tzinfo=UTC)),
    ... )                                                                            # doctest: +SKIP
    >>> result.authentic, result.claims.details["driver_version"]                    # doctest: +SKIP
    (True, '550.90.07')
"""

from attest.tee.nvidia.certs import device_root, rim_root
from attest.tee.nvidia.rim import Rim, parse_rim
from attest.tee.nvidia.spdm import SpdmReport, parse_report
from attest.tee.nvidia.verify import DEVICE_CHAIN, FORMAT, RIM, verify_gpu

__all__ = [
    "DEVICE_CHAIN",
    "FORMAT",
    "RIM",
    "Rim",
    "SpdmReport",
    "device_root",
    "parse_report",
    "parse_rim",
    "rim_root",
    "verify_gpu",
]
