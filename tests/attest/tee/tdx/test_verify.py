"""verify_tdx on the real vectors: the verdicts the vectors' README states, and each way to break them."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attest.certs import describe
from attest.errors import EvidenceFormatError
from attest.tee.claims import PlatformResult
from attest.tee.tdx import COLLATERAL_TIMES, TdxCollateral, verify_tdx
from attest.tee.tdx.chains import intel_sgx_root
from attest.tee.tdx.quote import parse_quote
from attest.tee.times import AppraisalTimes
from policies.attestation import TdxRules
from tests.attest.tee.tdx.vectors import (
    CCEL,
    DEBUG,
    SPR,
    TCB_INFO_V5,
    TDREPORT,
    V5,
    at,
    collateral,
    flip,
    flip_in_pem,
    length_fields,
    mutations,
    pck_chain_span,
    pcs,
    tdx_vector,
)
from tests.certgen import make_cert, new_key

JULY_2023 = AppraisalTimes(at("2023-07-01"))
FEB_2026 = at("2026-02-03")
# The v5 sample's collateral, each piece at a time inside its own dates (see the vectors' README).
V5_TIMES = AppraisalTimes(
    FEB_2026,
    {
        "tcb_info_chain": at("2025-05-01"),
        "qe_identity": at("2023-07-01"),
        "qe_identity_chain": at("2023-07-01"),
        "pck_crl": at("2023-07-01"),
        "root_crl": at("2023-07-01"),
    },
)


def _verify(
    quote: bytes,
    coll: TdxCollateral | None = None,
    times: AppraisalTimes = JULY_2023,
    rules: TdxRules | None = None,
    root: x509.Certificate | None = None,
) -> PlatformResult:
    return verify_tdx(quote, collateral=coll, rules=rules or TdxRules(), times=times, root=root)


def _intel(common_name: str) -> str:
    """How ``describe`` names Intel's certificates."""
    return f"C=US,ST=CA,L=Santa Clara,O=Intel Corporation,CN={common_name}"


def _reasons(result: PlatformResult) -> list[tuple[str, str]]:
    return [(v.check, v.reason) for v in result.violations]


def test_spr_is_authentic_and_fresh_but_matches_no_tcb_level() -> None:
    raw = tdx_vector(*SPR)
    result = _verify(raw, collateral())
    assert [check for check, _ in _reasons(result)] == ["acceptable"]
    assert "no matching TCB level" in result.violations[0].reason
    claims = result.claims
    assert (claims.platform, claims.format, claims.signer, claims.debug) == ("tdx", "tdx-quote-v4", "pck", False)
    assert claims.evidence_sha256 == hashlib.sha256(raw[:-39]).hexdigest()
    assert claims.details["trailing_bytes"] == 39
    assert claims.tcb["status"] is None and claims.tcb["platform_status"] is None
    assert (claims.tcb["qe_status"], claims.tcb["fmspc"], claims.tcb["pcesvn"]) == ("UpToDate", "50806f000000", 11)
    assert claims.tcb["pck_ca"] == "platform"
    assert claims.chain[0].endswith("CN=Intel SGX PCK Certificate") and claims.chain[-1].endswith(
        "CN=Intel SGX Root CA"
    )
    assert set(claims.measurements) == {
        "mrtd",
        "rtmr0",
        "rtmr1",
        "rtmr2",
        "rtmr3",
        "mrconfigid",
        "mrowner",
        "mrownerconfig",
    }
    assert claims.report_data.hex().startswith("6c62dec1b8191749")
    assert claims.details["qe_vendor_id"] == "939a7233-f79c-4ca9-940a-0db3957f0607"
    json.dumps(claims.to_json())  # the claims are recordable as they are


def test_the_debug_quote_is_authentic_up_to_date_and_debug() -> None:
    result = _verify(tdx_vector(*DEBUG), collateral())
    assert result.violations == ()
    assert result.claims.debug and result.claims.details["td_attributes"]["debug"]
    assert (result.claims.tcb["status"], result.claims.tcb["qe_status"]) == ("UpToDate", "UpToDate")


def test_v5_needs_a_time_for_each_piece_of_collateral() -> None:
    raw = tdx_vector(*V5)
    one_time = _verify(raw, collateral(TCB_INFO_V5), AppraisalTimes(FEB_2026))
    assert one_time.authentic
    assert {check for check, _ in _reasons(one_time)} == {"fresh"}
    reasons = [reason for _, reason in _reasons(one_time)]
    assert any(
        r.startswith("the TCB info chain: certificate '") and "Intel SGX TCB Signing' expired at 2025-05-21" in r
        for r in reasons
    )
    assert "the PCK CRL is stale: its next update was due at 2023-07-08T07:27:52+00:00" in " ".join(reasons)
    assert "the root CA CRL is stale" in " ".join(reasons) and "the QE identity is stale" in " ".join(reasons)
    per_piece = _verify(raw, collateral(TCB_INFO_V5), V5_TIMES)
    assert per_piece.violations == ()
    tcb = per_piece.claims.tcb
    assert (tcb["status"], tcb["platform_status"], tcb["module_status"], tcb["qe_status"]) == ("UpToDate",) * 4
    assert (tcb["module_identity"], tcb["tee_tcb_svn2"]) == ("TDX_01", "0d010400000000000000000000000000")
    assert per_piece.claims.format == "tdx-quote-v5"
    assert per_piece.claims.details["body_type"] == 3 and per_piece.claims.details["mrservicetd"] == "00" * 48
    assert set(V5_TIMES.overrides) < set(COLLATERAL_TIMES)


def test_the_tcb_info_time_is_its_own() -> None:
    times = AppraisalTimes(FEB_2026, {**V5_TIMES.overrides, "tcb_info": at("2026-03-04")})
    assert _reasons(_verify(tdx_vector(*V5), collateral(TCB_INFO_V5), times)) == [
        (
            "fresh",
            "the TCB info is stale: its next update was due at 2026-03-03T14:49:26+00:00 "
            "(verification time 2026-03-04T00:00:00+00:00)",
        ),
    ]
    times = AppraisalTimes(FEB_2026, {**V5_TIMES.overrides, "tcb_info": at("2026-01-01")})
    assert _reasons(_verify(tdx_vector(*V5), collateral(TCB_INFO_V5), times))[0][1].startswith(
        "the TCB info was issued at 2026-02-01T14:49:26+00:00, after the verification time"
    )


def test_the_ccel_quote_is_authentic_without_collateral_but_unevaluated() -> None:
    result = _verify(tdx_vector(*CCEL), None, AppraisalTimes(at("2024-08-01")))
    assert _reasons(result) == [("acceptable", "no TCB collateral given: the TCB and QE statuses are unevaluated")]
    assert result.claims.report_data == bytes(64)
    before = _verify(tdx_vector(*CCEL), None, AppraisalTimes(at("2024-07-01")))
    assert before.authentic
    assert (
        "fresh",
        "the PCK certificate chain: certificate 'C=US,ST=CA,L=Santa Clara,O=Intel Corporation,CN=Intel "
        "SGX PCK Certificate' is not valid until 2024-07-02T12:07:37+00:00 (verification time "
        "2024-07-01T00:00:00+00:00)",
    ) in _reasons(before)


def test_the_tdreport_is_refused() -> None:
    with pytest.raises(EvidenceFormatError, match="is a TDREPORT, not a quote"):
        _verify(tdx_vector(*TDREPORT), collateral())


def test_a_truncated_quote_is_refused() -> None:
    with pytest.raises(EvidenceFormatError, match="TDX quote is truncated"):
        _verify(tdx_vector(*SPR)[:2000], collateral())


def test_a_flipped_bit_in_the_signed_body_breaks_the_quote_signature() -> None:
    raw = tdx_vector(*DEBUG)
    for offset in (100, 48 + 520):  # MRSEAM, REPORTDATA
        result = _verify(flip(raw, offset), collateral())
        assert _reasons(result)[:1] == [("authentic", "the quote signature by the attestation key does not verify")]
        assert not result.authentic


def test_a_flipped_bit_in_the_quote_signature() -> None:
    raw = tdx_vector(*DEBUG)
    result = _verify(flip(raw, 48 + 584 + 4 + 10), collateral())
    assert _reasons(result)[0] == ("authentic", "the quote signature by the attestation key does not verify")


def test_a_flipped_bit_in_the_qe_report_or_its_signature() -> None:
    raw = tdx_vector(*DEBUG)
    qe = length_fields(raw)["certification_size"] + 4
    result = _verify(flip(raw, qe + 64), collateral())  # the QE report's MRENCLAVE
    assert _reasons(result)[0] == ("authentic", "the QE report signature by the PCK key does not verify")
    assert ("acceptable", "the QE status is unevaluated: the quote or the QE identity is not authentic") in _reasons(
        result
    )
    result = _verify(flip(raw, qe + 384 + 5), collateral())
    assert _reasons(result)[0] == ("authentic", "the QE report signature by the PCK key does not verify")


def test_the_qe_report_must_bind_the_attestation_key() -> None:
    raw = tdx_vector(*DEBUG)
    auth = length_fields(raw)["auth_size"] + 2  # QE authentication data: outside every signature but the binding
    result = _verify(flip(raw, auth + 3), collateral())
    (check, reason), *rest = _reasons(result)
    assert check == "authentic" and "does not bind the attestation key: it must be SHA-256(attestation key" in reason
    assert rest == [
        ("acceptable", "the TCB status is unevaluated: the quote or the TCB info is not authentic"),
        ("acceptable", "the QE status is unevaluated: the quote or the QE identity is not authentic"),
    ]


def test_a_flipped_bit_in_the_attestation_key() -> None:
    raw = tdx_vector(*DEBUG)
    reasons = [reason for _, reason in _reasons(_verify(flip(raw, 48 + 584 + 4 + 64 + 1), collateral()))]
    assert reasons[0] in (
        "the attestation key is not a point on P-256",
        "the quote signature by the attestation key does not verify",
    )
    assert reasons[1].startswith("the QE report data ") and "does not bind the attestation key" in reasons[1]


def test_only_intels_quoting_enclave_is_judged() -> None:
    raw = tdx_vector(*DEBUG)
    reasons = _reasons(_verify(raw[:12] + bytes(16) + raw[28:], collateral()))
    assert reasons[:2] == [
        ("authentic", "the QE vendor ID 00000000-0000-0000-0000-000000000000 is not Intel's quoting enclave's"),
        ("authentic", "the quote signature by the attestation key does not verify"),  # the header is signed
    ]


@pytest.mark.parametrize(
    ("index", "issuer", "child"),
    [
        (0, "Intel SGX PCK Platform CA", "Intel SGX PCK Certificate"),
        (1, "Intel SGX Root CA", "Intel SGX PCK Platform CA"),
    ],
)
def test_a_flipped_bit_in_a_pck_chain_certificate(index: int, issuer: str, child: str) -> None:
    raw = tdx_vector(*DEBUG)
    start, end = pck_chain_span(raw)
    result = _verify(raw[:start] + flip_in_pem(raw[start:end], index) + raw[end:], collateral())
    assert _reasons(result)[0] == (
        "authentic",
        f"the PCK certificate chain: '{_intel(issuer)}' did not sign '{_intel(child)}': the signature does not verify",
    )
    assert not result.authentic


def test_a_flipped_bit_in_the_tcb_signing_certificate() -> None:
    chain = flip_in_pem(pcs("tcbinfo_issuer_chain.pem"), 0)
    reasons = _reasons(_verify(tdx_vector(*DEBUG), collateral(tcb_info_chain=chain)))
    assert reasons == [
        (
            "authentic",
            f"the TCB info chain: '{_intel('Intel SGX Root CA')}' did not sign '{_intel('Intel SGX TCB Signing')}': "
            "the signature does not verify",
        ),
        ("acceptable", "the TCB status is unevaluated: the quote or the TCB info is not authentic"),
    ]


def test_the_quotes_copy_of_the_root_is_not_what_is_trusted() -> None:
    # The chain in the quote ends with a root certificate; a corrupt copy of it changes nothing, because
    # the path ends at the pinned root.
    raw = tdx_vector(*DEBUG)
    start, end = pck_chain_span(raw)
    result = _verify(raw[:start] + flip_in_pem(raw[start:end], 2) + raw[end:], collateral())
    assert result.violations == ()
    assert x509.load_pem_x509_certificate(tdx_vector("go-tdx-guest", "trusted_root.pem")) == intel_sgx_root()


def test_a_wrong_root_fails_every_chain() -> None:
    wrong = make_cert("Wrong Root", new_key(), ca=True, not_before=at("2018-01-01"), not_after=at("2050-01-01"))
    result = _verify(tdx_vector(*DEBUG), collateral(), root=wrong)
    intel_root = intel_sgx_root()
    not_configured = f"'{describe(intel_root)}' is self-signed but is not a configured root"
    assert _reasons(result) == [
        ("authentic", f"the PCK certificate chain: {not_configured}"),
        ("authentic", f"the TCB info chain: {not_configured}"),
        ("authentic", f"the QE identity chain: {not_configured}"),
        (
            "authentic",
            f"the root CA CRL is issued by '{intel_root.subject.rfc4514_string()}', not by "
            "'CN=Wrong Root', whose CRL it must be",
        ),
        ("acceptable", "the TCB status is unevaluated: the quote or the TCB info is not authentic"),
        ("acceptable", "the QE status is unevaluated: the quote or the QE identity is not authentic"),
    ]
    assert result.claims.tcb["status"] is None
    assert result.claims.chain == tuple(describe(c) for c in parse_quote(tdx_vector(*DEBUG)).pck_chain)


def test_a_tampered_tcb_info_does_not_verify() -> None:
    raw = pcs("sample_tcbInfo_response").replace(b'"tcbStatus":"OutOfDate"', b'"tcbStatus":"UpToDate"')
    result = _verify(tdx_vector(*DEBUG), collateral(tcb_info=raw))
    assert _reasons(result) == [
        ("authentic", "the signature of the TCB info does not verify"),
        ("acceptable", "the TCB status is unevaluated: the quote or the TCB info is not authentic"),
    ]


def test_a_tampered_qe_identity_does_not_verify() -> None:
    raw = pcs("sample_qeIdentity_response").replace(b'"isvsvn":4', b'"isvsvn":3')
    result = _verify(tdx_vector(*DEBUG), collateral(qe_identity=raw))
    assert _reasons(result) == [
        ("authentic", "the signature of the QE identity does not verify"),
        ("acceptable", "the QE status is unevaluated: the quote or the QE identity is not authentic"),
    ]


def test_collateral_must_be_signed_by_the_tcb_signing_certificate() -> None:
    # Other Intel keys chain to the same root: a PCK key (a platform's) must not be able to sign TCB info,
    # nor a PCK CA's (which may only sign certificates and CRLs).
    raw = tdx_vector(*DEBUG)
    start, end = pck_chain_span(raw)
    result = _verify(raw, collateral(tcb_info_chain=raw[start:end]))
    assert _reasons(result)[0] == (
        "authentic",
        "the TCB info must be signed by a certificate that the root issued directly",
    )
    result = _verify(raw, collateral(qe_identity_chain=pcs("pckcrl_issuer_chain.pem")))
    assert _reasons(result)[0][1].startswith("the QE identity chain: certificate '")
    assert _reasons(result)[0][1].endswith(
        "CN=Intel SGX PCK Platform CA' may not sign: it has neither keyUsage "
        "digitalSignature nor extendedKeyUsage codeSigning"
    )


def test_crls_from_the_wrong_issuer_are_refused() -> None:
    root, ca = _intel("Intel SGX Root CA"), _intel("Intel SGX PCK Platform CA")
    result = _verify(tdx_vector(*DEBUG), collateral(pck_crl=pcs("rootcrl.der")))
    assert _reasons(result) == [
        ("authentic", f"the PCK CRL is issued by '{root}', not by '{ca}', whose CRL it must be"),
    ]
    result = _verify(tdx_vector(*DEBUG), collateral(root_crl=pcs("pckcrl")))
    assert _reasons(result) == [
        ("authentic", f"the root CA CRL is issued by '{ca}', not by '{root}', whose CRL it must be"),
    ]


def test_a_tampered_crl_is_refused() -> None:
    der = pcs("pckcrl")
    result = _verify(tdx_vector(*DEBUG), collateral(pck_crl=flip(der, len(der) - 2)))
    assert _reasons(result) == [
        (
            "authentic",
            f"the PCK CRL's signature does not verify with the key of '{_intel('Intel SGX PCK Platform CA')}'",
        ),
    ]


def test_stale_crls_and_collateral_are_not_fresh() -> None:
    result = _verify(tdx_vector(*DEBUG), collateral(), AppraisalTimes(at("2023-07-10")))
    assert _reasons(result) == [
        (
            "fresh",
            "the QE identity is stale: its next update was due at 2023-07-08T07:24:59+00:00 "
            "(verification time 2023-07-10T00:00:00+00:00)",
        ),
        (
            "fresh",
            "the PCK CRL is stale: its next update was due at 2023-07-08T07:27:52+00:00 "
            "(verification time 2023-07-10T00:00:00+00:00)",
        ),
    ]
    assert result.authentic and result.claims.tcb["status"] == "UpToDate"


def test_the_pck_certificate_outside_its_validity() -> None:
    result = _verify(tdx_vector(*DEBUG), collateral(), AppraisalTimes(at("2031-01-01")))
    assert result.authentic
    assert result.claims.tcb["status"] == "UpToDate"  # stale, but judged: the TCB verdict is not withheld
    assert (
        "fresh",
        "the PCK certificate chain: certificate 'C=US,ST=CA,L=Santa Clara,O=Intel Corporation,CN=Intel "
        "SGX PCK Certificate' expired at 2030-02-07T08:02:55+00:00 (verification time "
        "2031-01-01T00:00:00+00:00)",
    ) in _reasons(result)


def test_the_policy_rules_are_applied() -> None:
    raw = tdx_vector(*DEBUG)
    claims = _verify(raw, collateral()).claims
    pinned = TdxRules(mrtd=(claims.measurements["mrtd"],), rtmr0=(claims.measurements["rtmr0"],))
    assert _verify(raw, collateral(), rules=pinned).violations == ()
    other = TdxRules(mrtd=("00" * 48,), rtmr3=("11" * 48,), tcb_statuses=("OutOfDate",), qe_tcb_statuses=())
    assert _reasons(_verify(raw, collateral(), rules=other)) == [
        ("acceptable", "the TCB status UpToDate is not accepted (the policy accepts OutOfDate)"),
        ("acceptable", "the QE TCB status UpToDate is not accepted (the policy accepts none)"),
        ("acceptable", f"MRTD {claims.measurements['mrtd']} is not one the policy allows"),
        ("acceptable", f"RTMR3 {claims.measurements['rtmr3']} is not one the policy allows"),
    ]


def test_collateral_for_another_platform() -> None:
    result = _verify(tdx_vector(*DEBUG), collateral(TCB_INFO_V5), V5_TIMES)
    assert (
        "acceptable",
        "the TCB info is for FMSPC 90c06f000000, the PCK certificate's is 50806f000000: it does "
        "not judge this platform",
    ) in _reasons(result)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_quotes_give_a_result_or_a_format_error(data: st.DataObject) -> None:
    valid = tdx_vector(*DEBUG)
    mutated = data.draw(mutations(valid, tuple(length_fields(valid).values())))
    try:
        result = _verify(mutated, collateral())
    except EvidenceFormatError:
        return
    if result.authentic:
        # What was accepted must be what Intel's keys vouched for; only the chain's copy of the root (never
        # trusted) and the PEM's whitespace and padding are free to differ.
        got, want = parse_quote(mutated), parse_quote(valid)
        assert (got.signed, got.signature, got.attestation_key, got.qe_auth_data) == (
            want.signed,
            want.signature,
            want.attestation_key,
            want.qe_auth_data,
        )
        assert (got.qe_report, got.qe_report_signature, got.pck_chain[:2]) == (
            want.qe_report,
            want.qe_report_signature,
            want.pck_chain[:2],
        )
