"""TCB evaluation on the real quotes and collateral, and on those values moved one rule at a time."""

from __future__ import annotations

from dataclasses import replace

import pytest

from attest.errors import IdentityError, PolicyViolation
from attest.tee.tdx.collateral import IsvLevel, TcbInfo, parse_qe_identity, parse_tcb_info
from attest.tee.tdx.pck import PckExtensions, pck_extensions
from attest.tee.tdx.quote import TdxQuote, parse_quote
from attest.tee.tdx.tcb import converge, evaluate_tcb, qe_level
from tests.attest.tee.tdx.vectors import DEBUG, SPR, TCB_INFO, TCB_INFO_V5, V5, at, pcs, tdx_vector


def _quote(vector: tuple[str, ...]) -> tuple[TdxQuote, PckExtensions]:
    quote = parse_quote(tdx_vector(*vector))
    return quote, pck_extensions(quote.pck_chain[0])


def _svn(quote: TdxQuote, **svns: int) -> TdxQuote:
    """The quote with TEE_TCB_SVN bytes changed, e.g. ``_svn(q, b0=2)``."""
    svn = bytearray(quote.body.tee_tcb_svn)
    for name, value in svns.items():
        svn[int(name[1:])] = value
    return replace(quote, body=replace(quote.body, tee_tcb_svn=bytes(svn)))


def test_spr_matches_no_level_of_the_sample() -> None:
    quote, pck = _quote(SPR)
    with pytest.raises(PolicyViolation, match="no matching TCB level: the PCK certificate's SGX TCB .* are below"):
        evaluate_tcb(parse_tcb_info(pcs(TCB_INFO)), pck, quote.body)


def test_the_debug_quote_is_up_to_date_at_the_first_level() -> None:
    quote, pck = _quote(DEBUG)
    info = parse_tcb_info(pcs(TCB_INFO))
    verdict = evaluate_tcb(info, pck, quote.body)
    assert verdict.level == info.levels[0]
    assert (verdict.status, verdict.module_status, verdict.module_id) == ("UpToDate", "UpToDate", None)


def test_a_lower_tdx_component_falls_to_a_later_level_or_to_none() -> None:
    quote, pck = _quote(DEBUG)
    info = parse_tcb_info(pcs(TCB_INFO))
    # Both levels ask for TDX component 2 >= 5: below that, no level matches, whatever the SGX TCB.
    with pytest.raises(PolicyViolation, match="the quote's TEE_TCB_SVN 03000400.* is below every TCB level"):
        evaluate_tcb(info, pck, _svn(quote, b2=4).body)
    # A PCESVN that only the second level accepts gives its OutOfDate.
    assert evaluate_tcb(info, replace(pck, pcesvn=5), quote.body).status == "OutOfDate"
    with pytest.raises(PolicyViolation, match="SGX TCB .* with PCESVN 4 is below every TCB level"):
        evaluate_tcb(info, replace(pck, pcesvn=4), quote.body)


def test_levels_are_met_by_both_parts_at_once() -> None:
    quote, pck = _quote(DEBUG)
    info = parse_tcb_info(pcs(TCB_INFO))
    strict_sgx = replace(info.levels[0], tdx_components=(0,) * 16, sgx_components=(9,) * 16)
    loose_sgx = replace(info.levels[1], tdx_components=(9,) * 16)
    with pytest.raises(PolicyViolation, match="no level of every TCB level .* is met by both"):
        evaluate_tcb(replace(info, levels=(strict_sgx, loose_sgx)), pck, quote.body)


def test_v5_is_judged_by_its_module_identity() -> None:
    quote, pck = _quote(V5)
    info = parse_tcb_info(pcs(TCB_INFO_V5))
    verdict = evaluate_tcb(info, pck, quote.body)
    # TEE_TCB_SVN 0b 01 04: module version 1 (TDX_01), module SVN 11 >= 6, component 2: 4 >= 3.
    assert (verdict.module_id, verdict.module, verdict.status) == (
        "TDX_01",
        info.module_identities[1].levels[0],
        "UpToDate",
    )
    assert verdict.level == info.levels[0]
    # Components 0 and 1 are the module's, judged by its identity, not by the level (which asks for 5 and 0).
    assert evaluate_tcb(info, pck, _svn(quote, b0=4).body).module == info.module_identities[1].levels[1]
    old = evaluate_tcb(info, pck, _svn(quote, b0=4).body)
    assert (old.module_status, old.status) == ("OutOfDate", "OutOfDate")
    with pytest.raises(PolicyViolation, match="the TDX module's SVN 1 is below every level of TDX_01"):
        evaluate_tcb(info, pck, _svn(quote, b0=1).body)
    assert evaluate_tcb(info, pck, _svn(quote, b1=3, b0=3).body).module_id == "TDX_03"
    with pytest.raises(PolicyViolation, match="no TDX module identity TDX_02 .* version 2 \\(it has TDX_03, TDX_01\\)"):
        evaluate_tcb(info, pck, _svn(quote, b1=2).body)
    with pytest.raises(PolicyViolation, match="no TDX module identity TDX_01 .*it has none"):
        evaluate_tcb(replace(info, module_identities=()), pck, quote.body)


def test_the_tdx_module_must_be_the_one_the_tcb_info_describes() -> None:
    quote, pck = _quote(V5)
    info = parse_tcb_info(pcs(TCB_INFO_V5))
    signed_elsewhere = replace(quote, body=replace(quote.body, mrsignerseam=b"\x01" * 48))
    with pytest.raises(IdentityError, match="MRSIGNERSEAM 0101.* is not the signer the TCB info names \\(0000"):
        evaluate_tcb(info, pck, signed_elsewhere.body)
    odd = replace(quote, body=replace(quote.body, seam_attributes=b"\x00" * 7 + b"\x80"))
    with pytest.raises(IdentityError, match="SEAMATTRIBUTES 0000000000000080 differ"):
        evaluate_tcb(info, pck, odd.body)
    identity = info.module_identities[1]
    masked = replace(identity, signer=replace(identity.signer, attributes_mask=b"\xff" * 7 + b"\x00"))
    relaxed = replace(info, module_identities=(info.module_identities[0], masked))
    assert evaluate_tcb(relaxed, pck, odd.body).status == "UpToDate"


def test_the_tcb_info_must_be_this_platforms() -> None:
    quote, pck = _quote(SPR)
    with pytest.raises(PolicyViolation, match="for FMSPC 90c06f000000, the PCK certificate's is 50806f000000"):
        evaluate_tcb(parse_tcb_info(pcs(TCB_INFO_V5)), pck, quote.body)
    info: TcbInfo = replace(parse_tcb_info(pcs(TCB_INFO)), pce_id=b"\x00\x01")
    with pytest.raises(PolicyViolation, match="for PCE-ID 0001, the PCK certificate's is 0000"):
        evaluate_tcb(info, pck, quote.body)


@pytest.mark.parametrize(
    ("platform", "module", "status"),
    [
        ("UpToDate", "UpToDate", "UpToDate"),
        ("SWHardeningNeeded", "UpToDate", "SWHardeningNeeded"),
        ("UpToDate", "OutOfDate", "OutOfDate"),
        ("SWHardeningNeeded", "OutOfDate", "OutOfDate"),
        ("ConfigurationNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"),
        ("ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"),
        ("OutOfDate", "OutOfDate", "OutOfDate"),
        ("OutOfDateConfigurationNeeded", "UpToDate", "OutOfDateConfigurationNeeded"),
        ("UpToDate", "Revoked", "Revoked"),
        ("Revoked", "UpToDate", "Revoked"),
    ],
)
def test_converge_takes_the_worse(platform: str, module: str, status: str) -> None:
    assert converge(platform, module) == status


def test_the_quoting_enclave_is_up_to_date() -> None:
    identity = parse_qe_identity(pcs("sample_qeIdentity_response"))
    for vector in (SPR, V5, DEBUG):
        level = qe_level(identity, parse_quote(tdx_vector(*vector)).qe_report)
        assert (level.status, level.date) == ("UpToDate", at("2023-02-15"))


def test_the_quoting_enclave_must_be_intels() -> None:
    identity = parse_qe_identity(pcs("sample_qeIdentity_response"))
    report = parse_quote(tdx_vector(*SPR)).qe_report
    with pytest.raises(IdentityError, match="MRSIGNER 00.* is not the QE identity's dc9e2a7c"):
        qe_level(identity, replace(report, mrsigner=bytes(32)))
    with pytest.raises(IdentityError, match="ISVPRODID 1 is not the QE identity's 2"):
        qe_level(identity, replace(report, isvprodid=1))
    with pytest.raises(IdentityError, match="MISCSELECT 00000001 under the mask ffffffff"):
        qe_level(identity, replace(report, miscselect=1))
    # Bit 1 of ATTRIBUTES is DEBUG, which the mask keeps: a debuggable QE is not Intel's production QE.
    debug = bytes([report.attributes[0] | 0x02]) + report.attributes[1:]
    with pytest.raises(IdentityError, match="ATTRIBUTES 1700.* under the mask fbff.* are not the QE identity's 1100"):
        qe_level(identity, replace(report, attributes=debug))
    # Bit 2 (MODE64BIT) is outside the mask.
    assert qe_level(identity, replace(report, attributes=bytes([report.attributes[0] ^ 0x04]) + report.attributes[1:]))


def test_the_qe_isvsvn_picks_its_level() -> None:
    identity = parse_qe_identity(pcs("sample_qeIdentity_response"))
    report = parse_quote(tdx_vector(*SPR)).qe_report
    older = IsvLevel(isvsvn=2, date=at("2022-01-01"), status="OutOfDate")
    two = replace(identity, levels=(*identity.levels, older))
    assert qe_level(two, replace(report, isvsvn=3)).status == "OutOfDate"
    with pytest.raises(PolicyViolation, match="the quoting enclave's ISVSVN 1 is below every level"):
        qe_level(two, replace(report, isvsvn=1))
