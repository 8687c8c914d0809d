"""The collateral's part of a TDX verification: its signatures, dates and CRLs, then the verdicts it gives.

Each check records its violation and the checks that still mean something go on, so that a result lists
everything wrong at once. A verdict is only drawn from inputs that are authentic: a TCB status read
from unsigned collateral, or for a PCK whose chain failed, would be the attacker's choice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from cryptography import x509

from attest.errors import IdentityError, PolicyViolation, SignatureError, VerificationError
from attest.tee.claims import Check, Violation
from attest.tee.tdx.chains import (
    chain_path,
    check_crl_dates,
    check_crl_issuer,
    check_dates,
    check_not_revoked,
    check_subject,
    check_window,
)
from attest.tee.tdx.collateral import QeIdentity, TcbInfo, TdxCollateral
from attest.tee.tdx.ecdsa import check_signature
from attest.tee.tdx.pck import PckExtensions
from attest.tee.tdx.quote import TdxQuote
from attest.tee.tdx.tcb import evaluate_tcb, qe_level
from attest.tee.times import AppraisalTimes
from policies.attestation import TdxRules

__all__ = [
    "COLLATERAL_TIMES",
    "PCK_CHAIN",
    "PCK_CRL",
    "QE_IDENTITY",
    "QE_IDENTITY_CHAIN",
    "ROOT_CRL",
    "TCB_INFO",
    "TCB_INFO_CHAIN",
    "appraise_collateral",
    "judge_chain",
    "passes",
]

PCK_CHAIN = "pck_chain"
"""The quote's PCK certificate, its PCK CA and the root: their validity periods."""
TCB_INFO = "tcb_info"
"""The TCB info's issueDate..nextUpdate."""
TCB_INFO_CHAIN = "tcb_info_chain"
"""The TCB info's signing chain (Intel SGX TCB Signing, root): their validity periods."""
QE_IDENTITY = "qe_identity"
"""The QE identity's issueDate..nextUpdate."""
QE_IDENTITY_CHAIN = "qe_identity_chain"
"""The QE identity's signing chain: their validity periods."""
PCK_CRL = "pck_crl"
"""The PCK CRL's thisUpdate..nextUpdate."""
ROOT_CRL = "root_crl"
"""The root CA CRL's thisUpdate..nextUpdate."""
COLLATERAL_TIMES = (PCK_CHAIN, TCB_INFO, TCB_INFO_CHAIN, QE_IDENTITY, QE_IDENTITY_CHAIN, PCK_CRL, ROOT_CRL)
"""Every name ``AppraisalTimes.of`` is asked for; each defaults to ``AppraisalTimes.at``."""

_TCB_SIGNER = ("Intel SGX TCB Signing",)


def passes(found: list[Violation], check: Check, step: Callable[..., object], *args: Any) -> bool:
    """Run one check, recording its violation; whether it passed tells the checks that depend on it."""
    try:
        step(*args)
    except VerificationError as exc:
        found.append(Violation(check, exc.reason))
        return False
    return True


def judge_chain(
    chain: tuple[x509.Certificate, ...],
    roots: tuple[x509.Certificate, ...],
    at: datetime,
    what: str,
    found: list[Violation],
) -> tuple[x509.Certificate, ...] | None:
    """The authentic path of ``chain`` (None, recorded, if there is none), its dates judged at ``at``."""
    try:
        path = chain_path(chain, roots)
    except VerificationError as exc:
        found.append(Violation("authentic", f"{what}: {exc.reason}"))
        return None
    try:
        check_dates(path, at)
    except VerificationError as exc:
        found.append(Violation("fresh", f"{what}: {exc.reason}"))
    return path


def appraise_collateral(
    collateral: TdxCollateral,
    quote: TdxQuote,
    pck: PckExtensions,
    pck_path: tuple[x509.Certificate, ...] | None,
    quote_authentic: bool,
    roots: tuple[x509.Certificate, ...],
    times: AppraisalTimes,
    rules: TdxRules,
    found: list[Violation],
) -> dict[str, Any]:
    """Check the collateral and judge the quote by it; the TCB claims it gives.

    ``pck_path`` is the verified PCK path (None when there is none: then the PCK CRL cannot be applied).
    When the quote is not authentic no verdict is drawn, but the collateral is still checked.
    """
    info, identity = collateral.tcb_info, collateral.qe_identity
    tcb_path, info_ok = _check_document(
        info, collateral.tcb_info_chain, roots, times.of(TCB_INFO_CHAIN), times.of(TCB_INFO), "the TCB info", found
    )
    qe_path, identity_ok = _check_document(
        identity,
        collateral.qe_identity_chain,
        roots,
        times.of(QE_IDENTITY_CHAIN),
        times.of(QE_IDENTITY),
        "the QE identity",
        found,
    )
    _check_crls(collateral, roots[0], (pck_path, tcb_path, qe_path), times, found)

    claims: dict[str, Any] = {"tcb_evaluation_data_number": info.evaluation_data_number}
    if not (quote_authentic and info_ok):
        found.append(
            Violation("acceptable", "the TCB status is unevaluated: the quote or the TCB info is not authentic")
        )
    else:
        claims.update(_tcb_verdict(info, pck, quote, rules, found))
    if not (quote_authentic and identity_ok):
        found.append(
            Violation("acceptable", "the QE status is unevaluated: the quote or the QE identity is not authentic")
        )
    else:
        claims.update(_qe_verdict(identity, quote, rules, found))
    return claims


def _check_document(
    document: TcbInfo | QeIdentity,
    chain: tuple[x509.Certificate, ...],
    roots: tuple[x509.Certificate, ...],
    chain_at: datetime,
    at: datetime,
    what: str,
    found: list[Violation],
) -> tuple[tuple[x509.Certificate, ...] | None, bool]:
    """The signing path of a PCS document (None if there is none) and whether it is authentic."""
    path = judge_chain(chain, roots, chain_at, f"{what} chain", found)
    authentic = path is not None and passes(found, "authentic", _check_signed, path, document, what)
    passes(found, "fresh", check_window, document.issue_date, document.next_update, at, what)
    return path, authentic


def _check_crls(
    collateral: TdxCollateral,
    root: x509.Certificate,
    paths: tuple[tuple[x509.Certificate, ...] | None, ...],
    times: AppraisalTimes,
    found: list[Violation],
) -> None:
    """Both CRLs' dates; the root CRL against what the root issued, the PCK CRL against the PCK."""
    root_crl, pck_crl = collateral.root_crl, collateral.pck_crl
    passes(found, "fresh", check_crl_dates, root_crl, times.of(ROOT_CRL), "the root CA CRL")
    passes(found, "fresh", check_crl_dates, pck_crl, times.of(PCK_CRL), "the PCK CRL")
    if passes(found, "authentic", check_crl_issuer, root_crl, root, "the root CA CRL"):
        under_root = {path[-2].serial_number: path[-2] for path in paths if path}
        for cert in under_root.values():
            passes(found, "authentic", check_not_revoked, root_crl, cert, "the root CA CRL")
    pck_path = paths[0]
    if pck_path is not None and passes(found, "authentic", check_crl_issuer, pck_crl, pck_path[1], "the PCK CRL"):
        passes(found, "authentic", check_not_revoked, pck_crl, pck_path[0], "the PCK CRL")


def _check_signed(path: tuple[x509.Certificate, ...], document: TcbInfo | QeIdentity, what: str) -> None:
    """SignatureError or CertificateError unless Intel's TCB signing certificate signed ``document``."""
    if len(path) != 2:
        raise SignatureError(f"{what} must be signed by a certificate that the root issued directly")
    check_subject(path[0], _TCB_SIGNER, "Intel's TCB signing certificate")
    check_signature(path[0].public_key(), document.signature, document.signed, f"the signature of {what}")


def _tcb_verdict(
    info: TcbInfo, pck: PckExtensions, quote: TdxQuote, rules: TdxRules, found: list[Violation]
) -> dict[str, Any]:
    try:
        verdict = evaluate_tcb(info, pck, quote.body)
    except IdentityError as exc:
        found.append(Violation("authentic", exc.reason))
        return {}
    except PolicyViolation as exc:
        found.append(Violation("acceptable", exc.reason))
        return {}
    if verdict.status not in rules.tcb_statuses:
        found.append(Violation("acceptable", _not_accepted("TCB", verdict.status, rules.tcb_statuses)))
    module_advisories = verdict.module.advisory_ids if verdict.module else ()
    return {
        "platform_status": verdict.level.status,
        "module_status": verdict.module_status,
        "module_identity": verdict.module_id,
        "status": verdict.status,
        "tcb_date": verdict.level.date.isoformat(),
        "advisory_ids": list(dict.fromkeys(verdict.level.advisory_ids + module_advisories)),
    }


def _qe_verdict(identity: QeIdentity, quote: TdxQuote, rules: TdxRules, found: list[Violation]) -> dict[str, Any]:
    try:
        level = qe_level(identity, quote.qe_report)
    except IdentityError as exc:
        found.append(Violation("authentic", exc.reason))
        return {}
    except PolicyViolation as exc:
        found.append(Violation("acceptable", exc.reason))
        return {}
    if level.status not in rules.qe_tcb_statuses:
        found.append(Violation("acceptable", _not_accepted("QE TCB", level.status, rules.qe_tcb_statuses)))
    return {
        "qe_status": level.status,
        "qe_tcb_date": level.date.isoformat(),
        "qe_advisory_ids": list(level.advisory_ids),
    }


def _not_accepted(what: str, status: str, allowed: tuple[str, ...]) -> str:
    return f"the {what} status {status} is not accepted (the policy accepts {', '.join(allowed) or 'none'})"
