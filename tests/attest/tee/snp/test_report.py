from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attest.errors import EvidenceFormatError
from attest.tee.snp.report import REPORT_SIZE, parse_report
from attest.tee.snp.tcb import product_from_cpuid, tcb_components
from tests.attest.tee.snp.vectors import edit, milan, trustee


def test_the_go_sev_guest_report() -> None:
    report = parse_report(milan()[0])
    assert report.version == 2 and report.cpuid is None and report.trailing == 0
    assert report.policy.raw == 0xB0000
    decoded = report.policy.to_json()
    assert decoded["debug"] is True and decoded["smt"] is True and decoded["migrate_ma"] is False
    assert decoded["reserved_bit17_set"] is True and decoded["single_socket"] is False
    assert (decoded["abi_major"], decoded["abi_minor"], decoded["unknown_bits"]) == (0, 0, "0x0")
    assert report.platform_info.smt_enabled and not report.platform_info.bit("tsme_enabled")
    assert report.report_data == bytes.fromhex("0102030405") + bytes(59)
    assert report.signing_key == 0 and not report.mask_chip_key and not report.author_key_en
    assert report.signature_algo == 1 and report.vmpl == 0
    assert tcb_components(report.reported_tcb, "Milan") == {"bootloader": 2, "tee": 0, "snp": 5, "microcode": 68}
    assert report.current_version == (1, 49, 3) and report.committed_version == (1, 49, 3)
    assert report.chip_id.hex().startswith("3ac3fe21e13fb099")
    assert report.report_id_ma == b"\xff" * 32
    assert report.launch_mit_vector is None and report.reserved_nonzero == ()
    assert report.signed == milan()[0][:0x2A0] and not any(report.signature_padding)
    assert report.signature_r.to_bytes(72, "little")[:4] == bytes.fromhex("4f8e8b5a")


def test_the_trustee_report() -> None:
    report = parse_report(trustee()[0])
    assert report.policy.raw == 0x3001F and not report.policy.debug and report.policy.to_json()["abi_minor"] == 31
    assert report.guest_svn == 4 and report.family_id[0] == 1 and report.image_id[0] == 2
    assert tcb_components(report.reported_tcb, "Milan") == {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}
    assert tcb_components(report.current_tcb, "Milan")["microcode"] == 206


def test_v3_and_v5_fields() -> None:
    v2 = milan()[0]
    v3 = parse_report(edit(edit(v2, 0, (3).to_bytes(4, "little")), 0x188, bytes([0x19, 0x11, 0x01])))
    assert v3.version == 3 and v3.cpuid == (0x19, 0x11, 0x01) and v3.launch_mit_vector is None
    assert product_from_cpuid(*v3.cpuid[:2]) == "Genoa"
    v5 = edit(edit(v2, 0, (5).to_bytes(4, "little")), 0x188, bytes([0x1A, 0x02, 0x00]))
    v5 = edit(v5, 0x1F8, (0x15).to_bytes(8, "little") + (0x17).to_bytes(8, "little"))
    report = parse_report(v5)
    assert (report.launch_mit_vector, report.current_mit_vector) == (0x15, 0x17)
    assert product_from_cpuid(*report.cpuid[:2]) == "Turin" and report.reserved_nonzero == ()
    # In a v2 or v3 report the same bytes are reserved: kept, recorded, not refused.
    assert parse_report(edit(v2, 0x1F8, b"\x15")).reserved_nonzero == ("0x1f8-0x29f",)
    assert parse_report(edit(v2, 0x188, b"\x19")).reserved_nonzero == ("0x188-0x19f",)


def test_turin_packs_the_tcb_differently() -> None:
    raw = int.from_bytes(bytes([1, 2, 3, 4, 0, 0, 0, 9]), "little")
    assert tcb_components(raw, "Turin") == {"fmc": 1, "bootloader": 2, "tee": 3, "snp": 4, "microcode": 9}
    assert tcb_components(raw, "Genoa") == {"bootloader": 1, "tee": 2, "snp": 0, "microcode": 9}


def test_products_by_cpuid() -> None:
    assert [product_from_cpuid(0x19, m) for m in (0x01, 0x11, 0xA0)] == ["Milan", "Genoa", "Genoa"]
    assert product_from_cpuid(0x1A, 0x11) == "Turin"
    assert product_from_cpuid(0x1A, 0x50) is None and product_from_cpuid(0x17, 0x31) is None


def test_trailing_bytes_are_not_part_of_the_report() -> None:
    report = parse_report(milan()[0] + b"\x00" * 39)
    assert report.trailing == 39 and len(report.raw) == REPORT_SIZE


@pytest.mark.parametrize(
    ("offset", "value", "reason"),
    [
        (0x00, (1).to_bytes(4, "little"), "SEV-SNP report version 1 is not supported"),
        (0x00, (4).to_bytes(4, "little"), "SEV-SNP report version 4 is not supported"),
        (0x34, (2).to_bytes(4, "little"), "signature algorithm 2 is not ECDSA P-384 with SHA-384"),
        (0x48, (2 << 2).to_bytes(4, "little"), "SIGNING_KEY 2 is reserved"),
        (0x48, (1 << 5).to_bytes(4, "little"), "key-info field at 0x48 has unknown bits set: 0x20"),
    ],
)
def test_refused_fields(offset: int, value: bytes, reason: str) -> None:
    with pytest.raises(EvidenceFormatError, match=reason):
        parse_report(edit(milan()[0], offset, value))


def test_an_unsigned_report_parses_whatever_its_algorithm() -> None:
    report = parse_report(edit(edit(milan()[0], 0x34, bytes(4)), 0x48, (7 << 2).to_bytes(4, "little")))
    assert report.signing_key == 7 and report.signature_algo == 0


@pytest.mark.parametrize("size", [0, 1, 0x2A0, REPORT_SIZE - 1])
def test_truncated(size: int) -> None:
    with pytest.raises(EvidenceFormatError, match=f"truncated: {size} bytes, a report is 1184"):
        parse_report(milan()[0][:size])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=REPORT_SIZE + 64))
def test_fuzz_random(data: bytes) -> None:
    try:
        parse_report(data)
    except EvidenceFormatError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, REPORT_SIZE - 1), st.integers(0, 255)), max_size=8), st.integers(0, 80))
def test_fuzz_mutated(changes: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(milan()[0])
    for offset, value in changes:
        data[offset] = value
    try:
        report = parse_report(bytes(data[: len(data) - cut]))
    except EvidenceFormatError:
        return
    assert report.version in (2, 3, 5) and len(report.raw) == REPORT_SIZE
