from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attest.errors import EvidenceFormatError
from attest.tee.snp.certtable import GUIDS, parse_cert_table
from tests.attest.tee.snp.vectors import cert_table as table
from tests.attest.tee.snp.vectors import edit, vector

ARK, ASK, VCEK, VLEK = (next(g for g, n in GUIDS.items() if n == name) for name in ("ark", "ask", "vcek", "vlek"))


def test_a_table_with_the_real_vcek() -> None:
    vcek, ask_ark = vector("trustee", "test-vcek.der"), vector("go-sev-guest", "milan.testcer")
    other = uuid.UUID("ecae0c0f-9502-43b1-afa2-0ae2e0d565b6")
    parsed = parse_cert_table(table((VCEK, vcek), (ASK, ask_ark), (other, b"\x08\x00\x00\x00"), pad=4096 - 1000))
    assert parsed.certificates() == {"vcek": vcek, "ask": ask_ark}
    assert [e.name for e in parsed.entries] == ["vcek", "ask", None]
    assert parsed.entries[2].guid == other and parsed.entries[0].offset == 4 * 24


def test_guids_are_mixed_endian() -> None:
    # The VCEK GUID 63da758d-e664-4564-... is stored with its first three fields little-endian.
    assert VCEK.bytes_le[:8] == bytes.fromhex("8d75da6364e66445")
    assert parse_cert_table(table((VCEK, b"x"))).entries[0].name == "vcek"
    assert parse_cert_table(table((uuid.UUID(bytes=VCEK.bytes_le), b"x"))).entries[0].name is None


def test_empty() -> None:
    assert parse_cert_table(b"").entries == ()
    assert parse_cert_table(bytes(24)).entries == ()


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (table((VCEK, b"cert"))[:24], "has no terminating all-zero entry"),
        (b"\x01" * 23, "has no terminating all-zero entry"),
        (table((VCEK, b"cert"))[:-1], r"entry 0 \(vcek\): bytes 48..51 lie beyond the end of the blob \(51 bytes\)"),
        (table((VCEK, b"a"), (VCEK, b"b")), r"entry 1 \(vcek\): the GUID appears twice"),
        (edit(table((ARK, b"cert")), 16, (24).to_bytes(4, "little")), r"entry 0 \(ark\): offset 24 points into the"),
        (edit(table((VLEK, b"cert")), 20, bytes(4)), r"entry 0 \(vlek\): the entry is empty"),
        (edit(table((VCEK, b"ab"), (ASK, b"cd")), 40, (72).to_bytes(4, "little")), "entries 0 and 1 overlap"),
        (edit(table((VCEK, b"a")), 16, (2**32 - 1).to_bytes(4, "little")), "lie beyond the end of the blob"),
    ],
)
def test_malformed(blob: bytes, reason: str) -> None:
    with pytest.raises(EvidenceFormatError, match=reason):
        parse_cert_table(blob)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random(blob: bytes) -> None:
    try:
        parsed = parse_cert_table(blob)
    except EvidenceFormatError:
        return
    assert all(e.offset + len(e.data) <= len(blob) for e in parsed.entries)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 24 * 4 + 39), st.integers(0, 255)), max_size=6))
def test_fuzz_mutated(changes: list[tuple[int, int]]) -> None:
    data = bytearray(table((VCEK, b"v" * 20), (ASK, b"a" * 10), (ARK, b"r" * 10)))
    for offset, value in changes:
        data[offset] = value
    try:
        parsed = parse_cert_table(bytes(data))
    except EvidenceFormatError:
        return
    spans = sorted((e.offset, e.offset + len(e.data)) for e in parsed.entries)
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:], strict=False))
