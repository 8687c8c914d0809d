from __future__ import annotations

import re
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attest.errors import EvidenceFormatError
from attest.tee.tdx.quote import INTEL_QE_VENDOR_ID, TDREPORT_SIZE, decode_td_attributes, parse_quote
from tests.attest.tee.tdx.vectors import CCEL, DEBUG, SPR, TDREPORT, V5, length_fields, mutations, tdx_vector

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    return data[:offset] + struct.pack(fmt, value) + data[offset + struct.calcsize(fmt) :]


def test_the_spr_v4_quote() -> None:
    raw = tdx_vector(*SPR)
    quote = parse_quote(raw)
    assert (quote.version, quote.body_type, quote.qe_vendor_id) == (4, 2, INTEL_QE_VENDOR_ID)
    assert quote.size == len(raw) - 39  # the vector carries 39 bytes of padding, which are not the quote
    assert quote.signed == raw[: 48 + 584]
    assert quote.body.tee_tcb_svn.hex() == "03000400000000000000000000000000"
    assert quote.body.tee_tcb_svn2 is None and quote.body.mrservicetd is None
    assert not quote.body.debug
    assert [c.subject.rfc4514_string().split(",")[-1] for c in quote.pck_chain] == [
        "CN=Intel SGX PCK Certificate",
        "CN=Intel SGX PCK Platform CA",
        "CN=Intel SGX Root CA",
    ]
    assert quote.qe_report.isvprodid == 2 and quote.qe_report.isvsvn == 4
    assert quote.qe_auth_data == bytes(range(32))


def test_the_v5_quote_has_a_tdx_15_body() -> None:
    raw = tdx_vector(*V5)
    quote = parse_quote(raw)
    assert (quote.version, quote.body_type, quote.size) == (5, 3, len(raw))
    assert quote.signed == raw[: 48 + 6 + 648]  # the body descriptor is signed too
    assert quote.body.tee_tcb_svn.hex() == "0b010400000000000000000000000000"
    assert quote.body.tee_tcb_svn2 is not None and quote.body.tee_tcb_svn2.hex() == "0d010400000000000000000000000000"
    assert quote.body.mrservicetd == bytes(48)


def test_the_debug_quote_and_the_zero_padded_ccel_quote() -> None:
    debug = parse_quote(tdx_vector(*DEBUG)).body
    assert debug.debug
    assert decode_td_attributes(debug.td_attributes) == {
        "hex": "0100001000000000",
        "debug": True,
        "sept_ve_disable": True,
        "migratable": False,
        "pks": False,
        "kl": False,
        "perfmon": False,
        "other_bits": [],
    }
    raw = tdx_vector(*CCEL)
    ccel = parse_quote(raw)
    assert ccel.body.report_data == bytes(64) == tdx_vector("go-tdx-guest", "ccel", "nonce.dat")
    assert ccel.size == 4935 and not any(raw[ccel.size :])


def test_unknown_td_attribute_bits_are_listed() -> None:
    attributes = decode_td_attributes(1 << 63 | 1 << 30 | 1 << 5 | 1 << 40)
    assert attributes["perfmon"] and attributes["pks"] and not attributes["debug"]
    assert attributes["other_bits"] == [5, 40]


def test_a_tdreport_is_refused_as_evidence() -> None:
    with pytest.raises(EvidenceFormatError, match="is a TDREPORT, not a quote.*cannot be verified offline"):
        parse_quote(tdx_vector(*TDREPORT))
    # REPORTMACSTRUCT.REPORTTYPE: TYPE 0x81 (TDX), SUBTYPE 0, VERSION 1, at the start of TDREPORT_STRUCT.
    report = b"\x81\x00\x01\x00" + bytes(TDREPORT_SIZE - 4)
    with pytest.raises(EvidenceFormatError, match="is a TDREPORT"):
        parse_quote(report)
    with pytest.raises(EvidenceFormatError, match="is a TDREPORT"):
        parse_quote(report[:300])


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "why"),
    [
        (0, "<H", 3, "TDX quote version 3 is not supported"),
        (0, "<H", 6, "TDX quote version 6 is not supported"),
        (4, "<I", 0, r"quote TEE type 0x0 is not TDX"),
        (2, "<H", 3, "attestation key type 3 is not supported"),
    ],
)
def test_header_fields_are_checked(offset: int, fmt: str, value: int, why: str) -> None:
    with pytest.raises(EvidenceFormatError, match=why):
        parse_quote(_patch(tdx_vector(*SPR), offset, fmt, value))


def test_v5_body_descriptors_are_checked() -> None:
    raw = tdx_vector(*V5)
    with pytest.raises(EvidenceFormatError, match="body type 1 is not supported"):
        parse_quote(_patch(raw, 48, "<H", 1))
    with pytest.raises(EvidenceFormatError, match="body type 3 must be 648 bytes, not 584"):
        parse_quote(_patch(raw, 50, "<I", 584))
    with pytest.raises(EvidenceFormatError, match="body type 2 must be 584 bytes, not 648"):
        parse_quote(_patch(raw, 48, "<H", 2))


@pytest.mark.parametrize("cut", [0, 1, 47, 48, 300, 631, 632, 635, 700, 1200, 4000, 4934])
def test_truncation_is_refused_with_the_field_it_cut(cut: int) -> None:
    with pytest.raises(EvidenceFormatError, match="truncated|is not supported|is a TDREPORT") as info:
        parse_quote(tdx_vector(*SPR)[:cut])
    if cut > 8:
        assert re.search(r"needs \d+ bytes at offset \d+, \d+ remain", info.value.reason)


def test_declared_sizes_must_match_what_they_contain() -> None:
    raw = tdx_vector(*SPR)
    fields = length_fields(raw)
    size = struct.unpack_from("<I", raw, fields["signature_size"])[0]
    # One byte more in the signature data than its certification data fills: the padding byte now belongs to it.
    with pytest.raises(EvidenceFormatError, match="signature data has 1 bytes after its last field"):
        parse_quote(_patch(raw, fields["signature_size"], "<I", size + 1))
    with pytest.raises(EvidenceFormatError, match="truncated: certification data of type 6 needs"):
        parse_quote(_patch(raw, fields["signature_size"], "<I", size - 1))
    nested = struct.unpack_from("<I", raw, fields["nested_size"])[0]
    with pytest.raises(EvidenceFormatError, match="QE report certification data is truncated"):
        parse_quote(_patch(raw, fields["nested_size"], "<I", nested + 1))
    with pytest.raises(EvidenceFormatError, match="has 1 bytes after its last field"):
        parse_quote(_patch(raw, fields["nested_size"], "<I", nested - 1))
    with pytest.raises(EvidenceFormatError, match="the QE authentication data needs 65535 bytes"):
        parse_quote(_patch(raw, fields["auth_size"], "<H", 0xFFFF))


def test_only_quotes_that_carry_their_pck_chain_are_accepted() -> None:
    raw = tdx_vector(*SPR)
    fields = length_fields(raw)
    with pytest.raises(EvidenceFormatError, match=r"type 3 \(an RSA-3072 encrypted PPID\) where type 6"):
        parse_quote(_patch(raw, fields["certification_type"], "<H", 3))
    with pytest.raises(EvidenceFormatError, match=r"type 4 \(a PCK leaf certificate alone\) where type 5"):
        parse_quote(_patch(raw, fields["nested_type"], "<H", 4))


def test_the_pem_chain_is_read_strictly() -> None:
    raw = tdx_vector(*SPR)
    start = raw.index(b"-----BEGIN CERTIFICATE-----")
    with pytest.raises(EvidenceFormatError, match="unexpected bytes before certificate 1"):
        parse_quote(raw[:start] + b"x" + raw[start + 1 :])
    end = raw.index(b"-----END CERTIFICATE-----") + 25
    with pytest.raises(EvidenceFormatError, match="unexpected bytes before certificate 2"):
        parse_quote(raw[:end] + b"?" + raw[end + 1 :])
    body = raw.index(b"\n", start) + 5
    with pytest.raises(EvidenceFormatError, match="certificate 1 is not valid base64|unexpected bytes"):
        parse_quote(raw[:body] + b"*" + raw[body + 1 :])


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_give_a_quote_or_a_format_error(data: bytes) -> None:
    try:
        parse_quote(data)
    except EvidenceFormatError:
        pass


@FUZZ
@given(st.data(), st.sampled_from([SPR, V5]))
def test_mutated_quotes_give_a_quote_or_a_format_error(data: st.DataObject, vector: tuple[str, ...]) -> None:
    valid = tdx_vector(*vector)
    mutated = data.draw(mutations(valid, tuple(length_fields(valid).values())))
    try:
        quote = parse_quote(mutated)
    except EvidenceFormatError:
        return
    assert quote.size <= len(mutated)
