"""Verification of an Intel TDX quote, offline, with PCS collateral and a time for each piece of it.

Authentic: the attestation key signed the quote; the quoting enclave vouches for that key in its report
(SHA-256 of the key and its authentication data), the PCK key signed that report, and the PCK
certificate chains to the pinned Intel SGX Root CA unrevoked; the collateral is signed by Intel's TCB
signing certificate under the same root, and the quoting enclave and the TDX module are the ones it
describes. Fresh: every certificate, CRL and collateral document is within its dates at the time given
for it (see ``appraise.COLLATERAL_TIMES``). Acceptable: the TCB statuses and the measurements are ones
the policy's TdxRules allow.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from cryptography import x509

from attest.certs import describe
from attest.errors import CertificateError, IdentityError, SignatureError
from attest.tee.claims import PlatformClaims, PlatformResult, Violation
from attest.tee.tdx.appraise import PCK_CHAIN, appraise_collateral, judge_chain, passes
from attest.tee.tdx.chains import check_subject, common_name, intel_sgx_root
from attest.tee.tdx.collateral import TdxCollateral
from attest.tee.tdx.ecdsa import check_signature, p256_key
from attest.tee.tdx.pck import SGX_TYPES, PckExtensions, pck_extensions
from attest.tee.tdx.quote import INTEL_QE_VENDOR_ID, TdxQuote, decode_td_attributes, parse_quote
from attest.tee.times import AppraisalTimes
from policies.attestation import TdxRules

__all__ = ["verify_tdx"]

_PCK_CAS = {"Intel SGX PCK Platform CA": "platform", "Intel SGX PCK Processor CA": "processor"}
_MEASUREMENTS = ("mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "mrconfigid", "mrowner", "mrownerconfig")


def verify_tdx(
    quote: bytes,
    *,
    collateral: TdxCollateral | None,
    rules: TdxRules,
    times: AppraisalTimes,
    root: x509.Certificate | None = None,
) -> PlatformResult:
    """The claims of ``quote`` and every violation found; EvidenceFormatError when it is not a TDX quote.

    ``root`` replaces the shipped Intel SGX Root CA (for tests: nothing else issues TDX PCK chains).
    Without ``collateral`` the quote can still be authentic, but its TCB is unevaluated, which no
    policy status accepts.
    """
    parsed = parse_quote(quote)
    pck = pck_extensions(parsed.pck_chain[0])
    roots = (root if root is not None else intel_sgx_root(),)
    found: list[Violation] = []
    pck_path = _check_quote(parsed, roots, times, found)
    authentic = not any(v.check == "authentic" for v in found)
    tcb = _tcb_claims(parsed, pck, pck_path)
    if collateral is None:
        found.append(Violation("acceptable", "no TCB collateral given: the TCB and QE statuses are unevaluated"))
    else:
        tcb.update(appraise_collateral(collateral, parsed, pck, pck_path, authentic, roots, times, rules, found))
    measurements = _measurements(parsed)
    for name in _MEASUREMENTS:
        allowed = getattr(rules, name)
        if allowed and measurements[name] not in allowed:
            found.append(Violation("acceptable", f"{name.upper()} {measurements[name]} is not one the policy allows"))
    claims = PlatformClaims(
        platform="tdx",
        format=f"tdx-quote-v{parsed.version}",
        evidence_sha256=hashlib.sha256(quote[: parsed.size]).hexdigest(),
        report_data=parsed.body.report_data,
        debug=parsed.body.debug,
        measurements=measurements,
        tcb=tcb,
        signer="pck",
        chain=tuple(describe(c) for c in (pck_path or parsed.pck_chain)),
        details=_details(parsed, len(quote)),
    )
    return PlatformResult(claims, tuple(found))


def _check_quote(
    quote: TdxQuote, roots: tuple[x509.Certificate, ...], times: AppraisalTimes, found: list[Violation]
) -> tuple[x509.Certificate, ...] | None:
    """The quote's own authenticity; the verified PCK path, or None when there is none."""
    passes(found, "authentic", _check_qe_vendor, quote)
    passes(found, "authentic", _check_quote_signature, quote)
    passes(found, "authentic", _check_qe_report, quote)
    path = judge_chain(quote.pck_chain, roots, times.of(PCK_CHAIN), "the PCK certificate chain", found)
    if path is not None and not passes(found, "authentic", _check_pck_roles, path):
        return None
    return path


def _check_qe_vendor(quote: TdxQuote) -> None:
    if quote.qe_vendor_id != INTEL_QE_VENDOR_ID:
        vendor = uuid.UUID(bytes=quote.qe_vendor_id)
        raise IdentityError(f"the QE vendor ID {vendor} is not Intel's quoting enclave's")


def _check_quote_signature(quote: TdxQuote) -> None:
    key = p256_key(quote.attestation_key, "the attestation key")
    check_signature(key, quote.signature, quote.signed, "the quote signature by the attestation key")


def _check_qe_report(quote: TdxQuote) -> None:
    """SignatureError unless the PCK key signed the QE report and the report binds the attestation key."""
    report = quote.qe_report
    check_signature(
        quote.pck_chain[0].public_key(), quote.qe_report_signature, report.raw, "the QE report signature by the PCK key"
    )
    digest = hashlib.sha256(quote.attestation_key + quote.qe_auth_data).digest()
    if report.report_data[:32] != digest or any(report.report_data[32:]):
        raise SignatureError(
            f"the QE report data {report.report_data.hex()} does not bind the attestation key: it must be "
            f"SHA-256(attestation key || QE authentication data) = {digest.hex()}, then 32 zero bytes"
        )


def _check_pck_roles(path: tuple[x509.Certificate, ...]) -> None:
    """CertificateError unless the path is PCK certificate, PCK CA, root: no other Intel key signs QE reports."""
    if len(path) != 3:
        raise CertificateError(f"the PCK path has {len(path)} certificates, not 3 (PCK, PCK CA, root)")
    check_subject(path[1], tuple(_PCK_CAS), "an Intel PCK CA")
    check_subject(path[0], ("Intel SGX PCK Certificate",), "an Intel PCK certificate")


def _measurements(quote: TdxQuote) -> dict[str, str]:
    body = quote.body
    values = (body.mrtd, *body.rtmrs, body.mrconfigid, body.mrowner, body.mrownerconfig)
    return {name: value.hex() for name, value in zip(_MEASUREMENTS, values, strict=True)}


def _tcb_claims(quote: TdxQuote, pck: PckExtensions, path: tuple[x509.Certificate, ...] | None) -> dict[str, Any]:
    """The TCB as the quote and the PCK certificate state it; statuses stay None until collateral judges them."""
    claims: dict[str, Any] = {
        "status": None,
        "platform_status": None,
        "module_status": None,
        "qe_status": None,
        "fmspc": pck.fmspc.hex(),
        "pce_id": pck.pce_id.hex(),
        "pcesvn": pck.pcesvn,
        "cpusvn": pck.cpusvn.hex(),
        "sgx_tcb_components": list(pck.sgx_tcb_components),
        "sgx_type": SGX_TYPES[pck.sgx_type],
        "pck_ca": _PCK_CAS.get(common_name(path[1]) or "") if path else None,
        "tee_tcb_svn": quote.body.tee_tcb_svn.hex(),
        "qe_isvsvn": quote.qe_report.isvsvn,
    }
    if quote.body.tee_tcb_svn2 is not None:
        claims["tee_tcb_svn2"] = quote.body.tee_tcb_svn2.hex()
    return claims


def _details(quote: TdxQuote, received: int) -> dict[str, Any]:
    body, qe = quote.body, quote.qe_report
    details: dict[str, Any] = {
        "body_type": quote.body_type,
        "body": "TDX 1.5 TD report" if quote.body_type == 3 else "TDX 1.0 TD report",
        "td_attributes": decode_td_attributes(body.td_attributes),
        "xfam": body.xfam.hex(),
        "mrseam": body.mrseam.hex(),
        "mrsignerseam": body.mrsignerseam.hex(),
        "seam_attributes": body.seam_attributes.hex(),
        "qe_vendor_id": str(uuid.UUID(bytes=quote.qe_vendor_id)),
        "user_data": quote.user_data.hex(),
        "qe": {"mrenclave": qe.mrenclave.hex(), "mrsigner": qe.mrsigner.hex(), "isvprodid": qe.isvprodid},
        "trailing_bytes": received - quote.size,
    }
    if body.mrservicetd is not None:
        details["mrservicetd"] = body.mrservicetd.hex()
    return details
