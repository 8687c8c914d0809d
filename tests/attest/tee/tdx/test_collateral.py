from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attest.errors import EvidenceFormatError, SignatureError
from attest.tee.tdx.collateral import parse_qe_identity, parse_tcb_info
from attest.tee.tdx.ecdsa import check_signature
from attest.tee.tdx.pem import load_crl, pem_chain
from tests.attest.tee.tdx.vectors import TCB_INFO, TCB_INFO_V5, at, mutations, pcs

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _signer() -> CertificatePublicKeyTypes:
    return pem_chain(pcs("tcbinfo_issuer_chain.pem"), "chain")[0].public_key()


def test_the_sample_tcb_info() -> None:
    info = parse_tcb_info(pcs(TCB_INFO))
    assert (info.fmspc.hex(), info.pce_id.hex(), info.evaluation_data_number) == ("50806f000000", "0000", 15)
    assert (info.issue_date, info.next_update) == (
        at("2023-06-18").replace(hour=8, minute=42, second=58),
        at("2023-07-18").replace(hour=8, minute=42, second=58),
    )
    assert [level.status for level in info.levels] == ["UpToDate", "OutOfDate"]
    assert info.levels[0].tdx_components[:3] == (3, 0, 5) and info.levels[0].pcesvn == 11
    assert info.levels[1].advisory_ids[0] == "INTEL-SA-00106"
    assert info.module_identities == () and info.tdx_module.mrsigner == bytes(48)
    check_signature(_signer(), info.signature, info.signed, "the TCB info")


def test_the_v5_tcb_info_has_module_identities() -> None:
    info = parse_tcb_info(pcs(TCB_INFO_V5))
    assert [m.id for m in info.module_identities] == ["TDX_03", "TDX_01"]
    assert [(lv.isvsvn, lv.status) for lv in info.module_identities[1].levels] == [
        (6, "UpToDate"),
        (4, "OutOfDate"),
        (2, "OutOfDate"),
    ]
    check_signature(_signer(), info.signature, info.signed, "the TCB info")


def test_the_sample_qe_identity() -> None:
    identity = parse_qe_identity(pcs("sample_qeIdentity_response"))
    assert identity.mrsigner.hex() == "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5"
    assert (identity.isvprodid, identity.miscselect, identity.miscselect_mask) == (2, 0, 0xFFFFFFFF)
    assert identity.attributes_mask.hex() == "fbffffffffffffff0000000000000000"
    assert [(lv.isvsvn, lv.status) for lv in identity.levels] == [(4, "UpToDate")]
    check_signature(_signer(), identity.signature, identity.signed, "the QE identity")


def test_the_signed_bytes_are_sliced_from_the_text_not_re_serialized() -> None:
    raw = pcs(TCB_INFO)
    inner = raw[len(b'{"tcbInfo":') : raw.index(b',"signature"')]
    assert parse_tcb_info(raw).signed == inner
    # Whitespace outside the signed object changes nothing...
    spaced = b'{ "tcbInfo" :\n ' + inner + b' ,\t"signature": ' + raw[raw.index(b',"signature"') + 13 :]
    info = parse_tcb_info(spaced)
    check_signature(_signer(), info.signature, info.signed, "the TCB info")
    # ...while the same object serialized another way is other bytes, which the signature does not cover.
    document = json.loads(raw)
    reserialized = parse_tcb_info(json.dumps(document).encode())
    assert reserialized.levels == info.levels
    with pytest.raises(SignatureError, match="the TCB info does not verify"):
        check_signature(_signer(), reserialized.signature, reserialized.signed, "the TCB info")


def _edit(name: str, change: dict[str, object], inner: str = "tcbInfo") -> bytes:
    document = json.loads(pcs(name))
    document[inner].update(change)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"id": "SGX"}, "is 'SGX' version 3, not TDX version 3"),
        ({"version": 2}, "is 'TDX' version 2, not TDX version 3"),
        ({"tcbType": 1}, "tcbType 1 is not supported"),
        ({"fmspc": "50806f00000"}, "fmspc must be 6 bytes as 12 hex digits"),
        ({"pceId": "zz00"}, "pceId must be 2 bytes as 4 hex digits"),
        ({"issueDate": "2023-06-18 08:42:58"}, "issueDate must be a UTC time"),
        ({"nextUpdate": "2023-02-30T00:00:00Z"}, "nextUpdate is not a valid date"),
        ({"tcbEvaluationDataNumber": True}, "tcbEvaluationDataNumber must be an integer"),
        ({"surprise": 1}, "the TCB info has unknown fields: surprise"),
        ({"tcbLevels": {}}, "tcbLevels must be a JSON array"),
    ],
)
def test_tcb_info_fields_are_read_strictly(change: dict[str, object], why: str) -> None:
    with pytest.raises(EvidenceFormatError, match=why):
        parse_tcb_info(_edit(TCB_INFO, change))


def test_tcb_levels_are_read_strictly() -> None:
    document = json.loads(pcs(TCB_INFO))
    level = document["tcbInfo"]["tcbLevels"][0]
    level["tcbStatus"] = "Fine"
    with pytest.raises(EvidenceFormatError, match=r"tcbLevels\[0\]: tcbStatus 'Fine' is not one of"):
        parse_tcb_info(json.dumps(document).encode())
    level["tcbStatus"] = "UpToDate"
    level["tcb"]["sgxtcbcomponents"].pop()
    with pytest.raises(EvidenceFormatError, match="sgxtcbcomponents must have 16 entries, not 15"):
        parse_tcb_info(json.dumps(document).encode())
    level["tcb"]["sgxtcbcomponents"].append({"svn": 256})
    with pytest.raises(EvidenceFormatError, match=r"sgxtcbcomponents\[15\]: svn is out of range \(0..255\)"):
        parse_tcb_info(json.dumps(document).encode())


def test_qe_identity_fields_are_read_strictly() -> None:
    with pytest.raises(EvidenceFormatError, match="is 'QE' version 2, not TD_QE version 2"):
        parse_qe_identity(_edit("sample_qeIdentity_response", {"id": "QE"}, "enclaveIdentity"))
    with pytest.raises(EvidenceFormatError, match="mrsigner must be 32 bytes"):
        parse_qe_identity(_edit("sample_qeIdentity_response", {"mrsigner": "00"}, "enclaveIdentity"))
    with pytest.raises(EvidenceFormatError, match="the QE identity lacks enclaveIdentity"):
        parse_qe_identity(pcs(TCB_INFO))


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"tcbInfo": {}, "tcbInfo": {}, "signature": "00"}', "duplicate JSON key 'tcbInfo'"),
        (b'{"tcbInfo": {"x": NaN}, "signature": "00"}', "JSON value NaN is not allowed"),
        (b'{"tcbInfo": {}, "signature": "00"} x', "is not valid JSON"),
        (b"\xff", "is not UTF-8 text"),
        (b'{"tcbInfo": {}, "signature": "00"}', "signature must be 64 bytes as 128 hex digits"),
        (b'{"tcbInfo": [], "signature": "00"}', "tcbInfo must be a JSON object"),
        (b" " * (1 << 20) + b"{}", "is larger than 1048576 bytes"),
    ],
)
def test_the_document_is_read_strictly(raw: bytes, why: str) -> None:
    with pytest.raises(EvidenceFormatError, match=why):
        parse_tcb_info(raw)


def test_crls_come_in_der_or_pem() -> None:
    der = load_crl(pcs("pckcrl"), "the PCK CRL")
    assert der.issuer.rfc4514_string().endswith("CN=Intel SGX PCK Platform CA")
    pem = der.public_bytes(Encoding.PEM)
    assert load_crl(pem, "the PCK CRL") == der
    with pytest.raises(EvidenceFormatError, match="the root CA CRL is not a DER or PEM CRL"):
        load_crl(pcs("rootcrl.der")[:-5], "the root CA CRL")


@FUZZ
@given(st.data(), st.sampled_from([TCB_INFO, TCB_INFO_V5]))
def test_mutated_tcb_info_gives_a_result_or_a_format_error(data: st.DataObject, name: str) -> None:
    try:
        parse_tcb_info(data.draw(mutations(pcs(name))))
    except EvidenceFormatError:
        pass


@FUZZ
@given(st.data())
def test_mutated_qe_identity_gives_a_result_or_a_format_error(data: st.DataObject) -> None:
    try:
        parse_qe_identity(data.draw(mutations(pcs("sample_qeIdentity_response"))))
    except EvidenceFormatError:
        pass


@FUZZ
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20,
    )
)
def test_arbitrary_json_gives_a_result_or_a_format_error(value: object) -> None:
    try:
        parse_tcb_info(json.dumps({"tcbInfo": value, "signature": "00" * 64}).encode())
    except EvidenceFormatError:
        pass
