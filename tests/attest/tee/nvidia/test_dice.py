from __future__ import annotations

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from attest.errors import CertificateError, EvidenceFormatError
from attest.tee.nvidia.dice import DeviceIdentity, device_identity, parse_device_identity
from tests.attest.tee.nvidia.vectors import HOPPER_FWID, chain_certs, flip, hopper_chain, trustee

SHA384 = "2.16.840.1.101.3.4.2.2"
SHA384_OID = bytes.fromhex("0609608648016503040202")


def tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    header = bytes([size]) if size < 0x80 else bytes([0x80 | (w := (size.bit_length() + 7) // 8)]) + size.to_bytes(w)
    return bytes([tag]) + header + content


def fwid(digest: bytes) -> bytes:
    return tlv(0x30, SHA384_OID + tlv(0x04, digest))


def extension_value(cert: x509.Certificate) -> bytes:
    found = [e.value for e in cert.extensions if e.oid.dotted_string.startswith("2.23.133.5.4.1")]
    assert len(found) == 1 and isinstance(found[0], x509.UnrecognizedExtension)
    return found[0].value


def hopper_der() -> bytes:
    return extension_value(chain_certs(hopper_chain())[0])


def blackwell_der() -> bytes:
    return extension_value(chain_certs(trustee("blackwell_cert_chain_case1.txt"))[0])


def test_hoppers_composite_device_id() -> None:
    identity = device_identity(chain_certs(hopper_chain())[0])
    assert identity.layout == "composite-device-id"
    assert identity.fwid.hash_algorithm == SHA384 and identity.fwid.digest.hex() == HOPPER_FWID
    assert len(identity.fwids) == 1 and not identity.debug


def test_blackwells_tcb_info() -> None:
    identity = device_identity(chain_certs(trustee("blackwell_cert_chain_case1.txt"))[0])
    assert identity.layout == "tcb-info"
    assert (identity.vendor, identity.model, identity.version, identity.svn) == ("NVIDIA", "GB20X A01 GSP", "02", 2)
    assert identity.fwid.digest.hex().startswith("9b92cc3e53b92652")
    assert identity.fwids[1].digest == bytes(48)  # a second layer's, unset: the first one is compared
    assert identity.flags == bytes.fromhex("80000001") and not identity.debug


def test_the_debug_operational_flag() -> None:
    der = tlv(0x30, tlv(0xA6, fwid(bytes(48))) + tlv(0x87, b"\x04\x10"))  # bit 3 set, 4 unused bits
    identity = parse_device_identity(der)
    assert identity.debug and identity.flags == b"\x10"


def test_certificates_without_the_extension_are_not_attestation_keys() -> None:
    brom = chain_certs(hopper_chain())[1]
    with pytest.raises(CertificateError, match="GSP BROM.*has no DICE FWID extension .*not a GPU attestation key"):
        device_identity(brom)


@pytest.mark.parametrize(
    ("der", "reason"),
    [
        (b"", "not exactly one DER SEQUENCE"),
        (hopper_der() + b"\0\0", "not exactly one DER SEQUENCE"),
        (hopper_der()[:-1], "the DICE extension is truncated: an element needs 186 bytes, 185 remain"),
        (b"\x30\x81\x05" + bytes(5), "non-minimal DER length"),
        (b"\x30\x80\x00\x00", "indefinite or oversized DER length"),
        (b"\x3f\x01\x00", "multi-byte DER tag"),
        (tlv(0x30, tlv(0x02, b"\x01") + tlv(0x30, b"")), "a CompositeDeviceID is version, public key and FWID"),
        (tlv(0x30, tlv(0x02, b"\x00\x01") + tlv(0x30, b"") + fwid(bytes(48))), "version is not minimally encoded"),
        (tlv(0x30, tlv(0x80, b"NV")), "has no FWID list"),
        (tlv(0x30, tlv(0xA6, fwid(b"")) + tlv(0x80, b"NV")), "fields go in tag order"),
        (tlv(0x30, tlv(0x86, b"")), "field \\[6\\] has the wrong form"),
        (tlv(0x30, tlv(0xA6, b"")), "FWID list must be one or more FWID SEQUENCEs"),
        (tlv(0x30, tlv(0xA6, tlv(0x30, tlv(0x04, b"")))), "an FWID is a hash algorithm OID and a digest"),
        (tlv(0x30, tlv(0x80, b"\xff") + tlv(0xA6, fwid(b""))), "vendor is not UTF-8"),
        (tlv(0x30, tlv(0xA6, fwid(b"")) + tlv(0x87, b"\x08")), "flags are not a DER BIT STRING"),
        (tlv(0x30, tlv(0xA6, fwid(b"")) + tlv(0x87, b"\x04\x11")), "flags have unused bits set"),
        (tlv(0x30, tlv(0xA6, tlv(0x30, b"\x06\x02\x80\x01" + tlv(0x04, b"")))), "OID arc is not minimally encoded"),
    ],
)
def test_malformed_extensions_are_refused(der: bytes, reason: str) -> None:
    with pytest.raises(EvidenceFormatError, match=reason):
        parse_device_identity(der)


def _parses_or_refuses(der: bytes) -> None:
    try:
        assert isinstance(parse_device_identity(der), DeviceIdentity)
    except EvidenceFormatError:
        pass


@settings(max_examples=400)
@given(st.binary(max_size=300))
def test_random_der_parses_or_is_refused(der: bytes) -> None:
    _parses_or_refuses(der)
    _parses_or_refuses(b"\x30" + bytes([len(der) & 0x7F]) + der)


@settings(max_examples=400)
@given(st.sampled_from([hopper_der(), blackwell_der()]), st.data())
def test_mutated_extensions_parse_or_are_refused(der: bytes, data: st.DataObject) -> None:
    offset = data.draw(st.integers(0, len(der) - 1))
    _parses_or_refuses(flip(der, offset, data.draw(st.integers(1, 255))))
    _parses_or_refuses(der[:offset])
