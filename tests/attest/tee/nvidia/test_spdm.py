from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attest.errors import EvidenceFormatError
from attest.tee.nvidia.spdm import REQUEST_SIZE, SIGNATURE_SIZE, SpdmReport, decode_report, parse_report
from tests.attest.tee.nvidia.vectors import HOPPER_FWID, HOPPER_NONCE, flip, hopper_binary, hopper_report, trustee

RECORD = REQUEST_SIZE + 8  # the measurement record follows the 8-byte MEASUREMENTS header
RECORD_LENGTH = 3520  # 64 blocks of 4 + 3 + 48 bytes
OPAQUE_LENGTH_AT = RECORD + RECORD_LENGTH + 32


def test_the_nvtrust_hopper_report() -> None:
    report = parse_report(hopper_report())
    assert report.nonce.hex() == HOPPER_NONCE
    assert report.requested_index == 0xFF and report.slot == 0
    assert [b.index for b in report.blocks] == list(range(1, 65))
    assert all(b.is_digest and len(b.value) == 48 for b in report.blocks)
    assert report.measurements[2].hex().startswith("8048dfd18fe229bf")
    assert report.responder_nonce.hex().startswith("b4b8a06a")
    assert report.opaque.driver_version == "550.90.07"
    assert report.opaque.vbios_version == "96.00.9F.00.01"
    assert report.opaque.fwid is not None and report.opaque.fwid.hex() == HOPPER_FWID
    assert report.opaque.nvdec0_disabled
    assert report.signed + report.signature == report.transcript == hopper_binary()
    assert len(report.signature) == SIGNATURE_SIZE


def test_hex_text_and_raw_bytes_give_the_same_report() -> None:
    text = hopper_report().decode()
    spaced = "\n".join(text[i : i + 64] for i in range(0, len(text), 64)).upper().encode() + b"  \r\n"
    assert parse_report(hopper_binary()) == parse_report(hopper_report()) == parse_report(spaced)


def test_the_blackwell_report_has_the_same_layout() -> None:
    report = parse_report(trustee("blackwellAttestationReport.txt"))
    assert report.nonce.hex().startswith("4cff7f53")
    assert len(report.blocks) == 64
    assert report.opaque.driver_version == "595.58.03"
    assert report.opaque.vbios_version == "98.02.81.00.01"
    assert report.opaque.values["chip_info"] == "GB202"
    assert report.opaque.values["opaque_data_version"] == 1
    assert not report.opaque.nvdec0_disabled


@pytest.mark.parametrize(
    ("size", "reason"),
    [
        (0, "the GET_MEASUREMENTS header needs 4 bytes, 0 remain"),
        (20, "the request nonce needs 32 bytes"),
        (REQUEST_SIZE + 3, "the MEASUREMENTS header needs 5 bytes"),
        (RECORD + 100, "the record needs 3520 bytes"),
        (OPAQUE_LENGTH_AT - 1, "the response nonce needs 32 bytes"),
        (OPAQUE_LENGTH_AT + 10, "the opaque data needs 422 bytes"),
        (len(hopper_binary()) - 1, "the signature needs 96 bytes, 95 remain"),
    ],
)
def test_truncation_names_the_field(size: int, reason: str) -> None:
    with pytest.raises(EvidenceFormatError, match=reason):
        parse_report(hopper_binary()[:size] if size else b"")


def test_bytes_after_the_signature_are_refused() -> None:
    with pytest.raises(EvidenceFormatError, match="1 unsigned bytes follow the signature"):
        parse_report(hopper_binary() + b"\0")


def _with(offset: int, value: bytes) -> bytes:
    data = hopper_binary()
    return data[:offset] + value + data[offset + len(value) :]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_with(0, b"\x10"), "does not start with an SPDM 1.1 GET_MEASUREMENTS request"),
        (_with(1, b"\xe1"), "does not start with an SPDM 1.1 GET_MEASUREMENTS request"),
        (_with(2, b"\x00"), "did not ask for a signature"),
        (_with(3, b"\x00"), "asked only for the number of measurements"),
        (_with(3, b"\x05"), r"asked for block 5, the response carries \[1, 2, 3"),
        (_with(REQUEST_SIZE - 1, b"\x01"), "the response is for slot 0, the request asked slot 1"),
        (_with(REQUEST_SIZE + 1, b"\x7f"), "not followed by an SPDM 1.1 MEASUREMENTS response"),
        (
            _with(REQUEST_SIZE + 4, b"\x41"),
            "the measurement record is truncated: a measurement block header needs 2 bytes, 0 remain",
        ),
        (_with(REQUEST_SIZE + 4, b"\x3f"), "the measurement record has 55 bytes after its 63 blocks"),
        (_with(RECORD, b"\x02"), "measurement block 2 appears twice"),
        (_with(RECORD, b"\x00"), "measurement block index 0 is reserved"),
        (_with(RECORD + 1, b"\x02"), "measurement block 1 is not in the DMTF format"),
        (_with(RECORD + 5, b"\x2f"), "measurement block 1 has 1 bytes after its value"),
        (_with(OPAQUE_LENGTH_AT, b"\x01\x04"), "opaque data length is 1025; SPDM allows at most 1024"),
    ],
)
def test_inconsistent_fields_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(EvidenceFormatError, match=reason):
        parse_report(data)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b"11e001f", "odd number of digits"),
        (b"0" * (5 << 20), "more than any GPU report"),
    ],
)
def test_text_that_is_not_a_hex_report(text: bytes, reason: str) -> None:
    with pytest.raises(EvidenceFormatError, match=reason):
        decode_report(text)


def test_an_oversized_binary_report_is_refused_before_parsing() -> None:
    with pytest.raises(EvidenceFormatError, match="more than 1048576"):
        decode_report(b"\x11" + bytes(1 << 20))


def test_text_with_other_characters_is_read_as_binary() -> None:
    with pytest.raises(
        EvidenceFormatError, match=r"does not start with an SPDM 1.1 GET_MEASUREMENTS request \(version 0x31"
    ):
        parse_report(b"11e0zz")


def _parses_or_refuses(data: bytes) -> None:
    try:
        assert isinstance(parse_report(data), SpdmReport)
    except EvidenceFormatError:
        pass


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_random_input_parses_or_is_refused(data: bytes) -> None:
    _parses_or_refuses(data)
    _parses_or_refuses(b"\x11" + data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_reports_parse_or_are_refused(data: st.DataObject) -> None:
    report = hopper_binary()
    for _ in range(data.draw(st.integers(1, 4))):
        offset = data.draw(st.integers(0, len(report) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            report = flip(report, offset, data.draw(st.integers(1, 255)))
        elif action == "cut":
            report = report[:offset] + report[offset + data.draw(st.integers(1, 64)) :]
        else:
            report = report[:offset] + data.draw(st.binary(min_size=1, max_size=8)) + report[offset:]
    _parses_or_refuses(report)
