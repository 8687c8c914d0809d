"""AMD SEV-SNP attestation reports, verified offline against AMD's pinned roots, at given times.

>>> from datetime import UTC, datetime
>>> from pathlib import Path
>>> from attest.tee.snp import verify_snp
>>> from attest.tee.times import AppraisalTimes
>>> from policies.attestation import SnpRules
>>> vectors = Path("tests/fixtures/vectors/tee/sev-snp/trustee")
>>> result = verify_snp(
...     (vectors / "test-report.bin").read_bytes(),
...     certificates={"vcek": (vectors / "test-vcek.der").read_bytes()},
...     rules=SnpRules(),
...     times=AppraisalTimes(datetime(2024, 1, 1, tzinfo=UTC)),
... )
>>> result.violations
()
>>> result.claims.tcb["reported"]
{'bootloader': 3, 'tee': 0, 'snp': 8, 'microcode': 115}
"""

from __future__ import annotations

from attest.tee.snp.verify import CERTIFICATE_NAMES, verify_snp

__all__ = ["CERTIFICATE_NAMES", "verify_snp"]
