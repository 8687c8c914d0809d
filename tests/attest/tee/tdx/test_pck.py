from __future__ import annotations

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attest.errors import EvidenceFormatError
from attest.tee.tdx import der
from attest.tee.tdx.pck import SGX_EXTENSIONS_OID, pck_extensions, read_sgx_extensions
from attest.tee.tdx.pem import pem_chain
from attest.tee.tdx.quote import parse_quote
from tests.attest.tee.tdx.vectors import SPR, V5, mutations, pcs, tdx_vector

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _raw_extension(vector: tuple[str, ...] = SPR) -> bytes:
    leaf = parse_quote(tdx_vector(*vector)).pck_chain[0]
    value = leaf.extensions.get_extension_for_oid(SGX_EXTENSIONS_OID).value
    assert isinstance(value, x509.UnrecognizedExtension)
    return value.value


def test_the_spr_pck_certificate() -> None:
    pck = pck_extensions(parse_quote(tdx_vector(*SPR)).pck_chain[0])
    assert pck.fmspc.hex() == "50806f000000" and pck.pce_id == b"\x00\x00"
    assert pck.pcesvn == 11
    assert pck.sgx_tcb_components == (3, 3, 2, 2, 2, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0)
    assert pck.cpusvn == bytes(pck.sgx_tcb_components)  # Intel's PCK CPUSVN spells out the components
    assert pck.sgx_type == 1 and pck.ppid.hex() == "089ddfdb9c0359c82a3bc7719239574e"
    assert pck.platform_instance_id is not None
    assert dict(pck.configuration) == {"dynamic_platform": True, "cached_keys": False, "smt_enabled": True}


def test_the_v5_pck_certificate() -> None:
    pck = pck_extensions(parse_quote(tdx_vector(*V5)).pck_chain[0])
    assert (pck.fmspc.hex(), pck.pcesvn) == ("90c06f000000", 13)


def test_a_certificate_without_sgx_extensions_is_not_a_pck() -> None:
    (signer, _root) = pem_chain(pcs("tcbinfo_issuer_chain.pem"), "chain")
    with pytest.raises(EvidenceFormatError, match="'.*CN=Intel SGX TCB Signing' has no SGX extensions"):
        pck_extensions(signer)


def _without(raw: bytes, oid: str) -> bytes:
    """The extension SEQUENCE with the entry for ``oid`` (a direct child) removed, re-encoded."""
    _, contents = der.single(raw, "test")
    kept = b""
    for tag, value in der.elements(contents, "test"):
        if der.read_oid(der.elements(value, "test")[0][1], "test") != oid:
            kept += _encode(tag, value)
    return _encode(der.SEQUENCE, kept)


def _encode(tag: int, value: bytes) -> bytes:
    size = len(value)
    if size < 0x80:
        return bytes([tag, size]) + value
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets + value


def test_required_entries_must_be_there_once() -> None:
    raw = _raw_extension()
    assert read_sgx_extensions(_encode(der.SEQUENCE, der.single(raw, "t")[1])) == read_sgx_extensions(raw)
    with pytest.raises(EvidenceFormatError, match=r"lack FMSPC \(1.2.840.113741.1.13.1.4\)"):
        read_sgx_extensions(_without(raw, "1.2.840.113741.1.13.1.4"))
    with pytest.raises(EvidenceFormatError, match=r"lack the SGX TCB|lack .*1.2.840.113741.1.13.1.2\)"):
        read_sgx_extensions(_without(raw, "1.2.840.113741.1.13.1.2"))
    fmspc_entry = next(
        _encode(tag, value)
        for tag, value in der.elements(der.single(raw, "t")[1], "t")
        if der.read_oid(der.elements(value, "t")[0][1], "t") == "1.2.840.113741.1.13.1.4"
    )
    with pytest.raises(EvidenceFormatError, match="1.2.840.113741.1.13.1.4 appears twice"):
        read_sgx_extensions(_encode(der.SEQUENCE, der.single(raw, "t")[1] + fmspc_entry))


def test_sizes_and_types_are_the_profiles() -> None:
    raw = _raw_extension()
    fmspc = bytes.fromhex("0406") + bytes.fromhex("50806f000000")
    assert fmspc in raw
    with pytest.raises(EvidenceFormatError, match="FMSPC is 5 bytes, not 6"):
        read_sgx_extensions(_resize(raw, fmspc, bytes.fromhex("0405") + bytes(5)))
    with pytest.raises(EvidenceFormatError, match=r"FMSPC \(1.2.840.113741.1.13.1.4\) has DER tag 0x02, not 0x04"):
        read_sgx_extensions(_resize(raw, fmspc, bytes.fromhex("0201") + b"\x05"))
    pcesvn = bytes.fromhex("060b2a864886f84d010d010211" + "02010b")
    assert pcesvn in raw
    with pytest.raises(EvidenceFormatError, match="PCESVN is out of range"):
        read_sgx_extensions(_resize(raw, pcesvn, pcesvn[:-3] + bytes.fromhex("0203010000")))
    with pytest.raises(EvidenceFormatError, match="INTEGER is not minimally encoded"):
        read_sgx_extensions(_resize(raw, pcesvn, pcesvn[:-3] + bytes.fromhex("0202000b")))


def _resize(element: bytes, old: bytes, new: bytes) -> bytes:
    """``element`` with ``old`` replaced by ``new``, every enclosing SEQUENCE's length adjusted."""
    tag, contents = der.single(element, "test")
    if tag != der.SEQUENCE:
        return element.replace(old, new)
    children = [_encode(t, c) for t, c in der.elements(contents, "test")]
    if any(old in child for child in children):
        return _encode(tag, b"".join(_resize(c, old, new) if old in c else c for c in children))
    return _encode(tag, contents.replace(old, new))


def test_der_lengths_must_be_minimal_and_bounded() -> None:
    with pytest.raises(EvidenceFormatError, match="not minimally encoded"):
        der.single(b"\x04\x81\x05" + bytes(5), "t")
    with pytest.raises(EvidenceFormatError, match="declares 6 bytes, only 5 remain"):
        der.single(b"\x04\x06" + bytes(5), "t")
    with pytest.raises(EvidenceFormatError, match="length of 5 bytes"):
        der.single(b"\x04\x85" + bytes(10), "t")
    with pytest.raises(EvidenceFormatError, match="2 bytes follow the DER element"):
        der.single(b"\x05\x00\x05\x00", "t")
    with pytest.raises(EvidenceFormatError, match="high tag numbers"):
        der.single(b"\x1f\x01\x00", "t")
    assert der.read_oid(bytes.fromhex("2a864886f84d010d01"), "t") == "1.2.840.113741.1.13.1"
    with pytest.raises(EvidenceFormatError, match="arc is not minimally encoded"):
        der.read_oid(bytes.fromhex("2a80864886f84d"), "t")
    with pytest.raises(EvidenceFormatError, match="truncated OBJECT IDENTIFIER"):
        der.read_oid(bytes.fromhex("2a86"), "t")
    with pytest.raises(EvidenceFormatError, match="must be 00 or FF"):
        der.read_boolean(b"\x01", "t")


@FUZZ
@given(st.data())
def test_mutated_extensions_give_a_result_or_a_format_error(data: st.DataObject) -> None:
    try:
        read_sgx_extensions(data.draw(mutations(_raw_extension())))
    except EvidenceFormatError:
        pass


@FUZZ
@given(st.binary(max_size=600))
def test_random_der_gives_a_result_or_a_format_error(raw: bytes) -> None:
    try:
        read_sgx_extensions(raw)
    except EvidenceFormatError:
        pass
