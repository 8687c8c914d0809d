"""Intel TDX: DCAP quotes v4 and v5 verified offline against Intel PCS collateral, at given times.

>>> from datetime import UTC, datetime
>>> from pathlib import Path
>>> from attest.tee.tdx import TdxCollateral, verify_tdx
>>> from attest.tee.times import AppraisalTimes
>>> from policies.attestation import TdxRules
>>> pcs = Path("pcs")                                                            # doctest: +SKIP
>>> collateral = TdxCollateral.from_pcs(
...     tcb_info=(pcs / "tcb_info.json").read_bytes(),
...     tcb_info_chain=(pcs / "tcb_info_issuer_chain.pem").read_bytes(),
...     qe_identity=(pcs / "qe_identity.json").read_bytes(),
...     qe_identity_chain=(pcs / "qe_identity_issuer_chain.pem").read_bytes(),
...     pck_crl=(pcs / "pck_crl.der").read_bytes(),
...     root_crl=(pcs / "root_crl.der").read_bytes(),
... )                                                                            # doctest: +SKIP
>>> result = verify_tdx(Path("quote.dat").read_bytes(), collateral=collateral, rules=TdxRules(),
...                     times=AppraisalTimes(datetime.now(UTC)))                 # doctest: +SKIP
>>> result.violations, result.claims.tcb["status"]                               # doctest: +SKIP
((), 'UpToDate')
"""

from attest.tee.tdx.appraise import COLLATERAL_TIMES
from attest.tee.tdx.collateral import TdxCollateral
from attest.tee.tdx.quote import TdxQuote, parse_quote
from attest.tee.tdx.verify import verify_tdx

__all__ = ["COLLATERAL_TIMES", "TdxCollateral", "TdxQuote", "parse_quote", "verify_tdx"]
