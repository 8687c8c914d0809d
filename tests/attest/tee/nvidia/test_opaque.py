from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attest.errors import EvidenceFormatError
from attest.tee.nvidia.opaque import OpaqueData, parse_opaque
from attest.tee.nvidia.spdm import parse_report
from tests.attest.tee.nvidia.vectors import HOPPER_FWID, hopper_report


def field(type_: int, value: bytes) -> bytes:
    return type_.to_bytes(2, "little") + len(value).to_bytes(2, "little") + value


def hopper_opaque() -> bytes:
    return b"".join(field(f.type, f.value) for f in parse_report(hopper_report()).opaque.fields)


def test_the_hopper_fields_decode() -> None:
    opaque = parse_opaque(hopper_opaque())
    assert [f.type for f in opaque.fields] == [6, 14, 15, 16, 17, 18, 19, 3, 4, 12, 13, 11, 20, 21]
    assert opaque.values["driver_version"] == "550.90.07"
    assert opaque.values["vbios_version"] == "96.00.9F.00.01"
    assert opaque.values["chip_sku"] == "882" and opaque.values["project"] == "1010"
    assert opaque.values["project_sku"] == "0200" and opaque.values["project_sku_mod"] == ""
    assert opaque.values["nvdec0_status"] == "disabled"
    assert opaque.values["fwid"] == HOPPER_FWID
    assert len(opaque.values["msrscnt"]) == 64 and opaque.values["msrscnt"][:4] == [0, 1, 4, 1]
    assert opaque.values["board_id"] == "b1030000"  # no established encoding: kept as hex


def test_vbios_bytes_are_shown_in_nvidias_order() -> None:
    assert parse_opaque(field(6, bytes.fromhex("009f009601000000"))).vbios_version == "96.00.9F.00.01"


def test_unknown_types_are_kept_raw() -> None:
    opaque = parse_opaque(field(0x1234, b"\x01\x02") + field(36, b"\x00\x00"))
    assert opaque.values == {"type_4660": "0102", "feature_flag": "0000"}
    assert opaque.raw(0x1234) == b"\x01\x02" and opaque.fwid is None and opaque.driver_version is None


def test_an_empty_list_is_no_fields() -> None:
    assert parse_opaque(b"") == OpaqueData(())


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (field(3, b"550\0") + b"\x06\x00\x08", "ends inside a field header at byte 8"),
        (b"\x03\x00\x10\x00550.90", "field 3 at byte 0 claims 16 bytes, only 6 remain"),
        (field(3, b"550\0") + field(3, b"551\0"), "driver_version \\(3\\) appears twice"),
        (field(3, b"550\0x"), "driver_version is not NUL-terminated printable ASCII"),
        (field(17, b"10\x0110"), "project is not NUL-terminated printable ASCII"),
        (field(6, b"\0" * 7), "vbios_version is 7 bytes, not 8"),
        (field(11, b"\x55\x55"), "nvdec0_status is 2 bytes, not 1"),
        (field(12, b"\0" * 6), "msrscnt is 6 bytes, not a multiple of 4"),
        (field(22, b"\0" * 12), "switch_pdi is 12 bytes, not a multiple of 8"),
        (field(34, b""), "opaque_data_version is 0 bytes, not a 1 to 8 byte integer"),
        (field(5, bytes(1021)), "opaque data is 1025 bytes; SPDM allows at most 1024"),
    ],
)
def test_malformed_fields_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(EvidenceFormatError, match=reason):
        parse_opaque(data)


def _parses_or_refuses(data: bytes) -> None:
    try:
        assert isinstance(parse_opaque(data), OpaqueData)
    except EvidenceFormatError:
        pass


@settings(max_examples=400)
@given(st.binary(max_size=1100))
def test_random_opaque_data_parses_or_is_refused(data: bytes) -> None:
    _parses_or_refuses(data)


@settings(max_examples=400)
@given(st.lists(st.tuples(st.integers(0, 40), st.binary(max_size=24)), max_size=12))
def test_well_framed_fields_parse_or_are_refused(fields: list[tuple[int, bytes]]) -> None:
    _parses_or_refuses(b"".join(field(t, v) for t, v in fields))


@settings(max_examples=300)
@given(st.integers(0, 421), st.integers(1, 255))
def test_mutated_hopper_opaque_data_parses_or_is_refused(offset: int, mask: int) -> None:
    data = hopper_opaque()
    _parses_or_refuses(data[:offset] + bytes([data[offset] ^ mask]) + data[offset + 1 :])
