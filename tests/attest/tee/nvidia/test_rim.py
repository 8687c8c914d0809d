from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attest.errors import CertificateError, EvidenceFormatError, SignatureError
from attest.tee.nvidia.certs import device_root, rim_root, verify_path
from attest.tee.nvidia.rim import NVDEC_INDEX, GoldenMeasurement, Rim, mismatched_blocks, parse_rim, signer_key
from attest.tee.nvidia.xmldsig import verify_signed_xml
from tests.attest.tee.nvidia.rimgen import DS_NS, make_rim_ca, resign
from tests.attest.tee.nvidia.vectors import DRIVER_RIM, VBIOS_RIM, VBIOS_TEST_RIM, T, nvtrust

# Each shared RIM's signer certificate, and when it expires.
EXPIRY = {
    DRIVER_RIM: datetime(2025, 6, 26, 6, 10, 12, tzinfo=UTC),
    VBIOS_TEST_RIM: datetime(2025, 6, 22, 9, 38, 54, tzinfo=UTC),
    VBIOS_RIM: datetime(2025, 9, 5, 8, 35, 22, tzinfo=UTC),
}


def check(data: bytes, at: datetime = T, roots: list | None = None) -> tuple[Rim, tuple[str, ...]]:
    """Parse, verify the XML signature and the signer chain, as verify_gpu does."""
    rim = parse_rim(data, "RIM")
    verify_signed_xml(rim.signed, signer_key(rim, "RIM"), "RIM")
    _, stale = verify_path(
        rim.signer, rim.signed.certificates[1:], roots or [rim_root()], at, require_signing_usage=True
    )
    return rim, stale


def test_the_shared_rims() -> None:
    driver, stale = check(nvtrust(DRIVER_RIM))
    assert stale == () and driver.version == "545.00" and driver.product == "GH100"
    assert [m.index for m in driver.active] == [7, *range(21, 41)]
    assert driver.signer.subject.rfc4514_string().startswith("CN=HCC RIM L4 Signer")
    vbios, _ = check(nvtrust(VBIOS_RIM))
    assert vbios.version == "96.00.74.00.1A"
    assert [m.index for m in vbios.active] == [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12]
    assert len(next(m for m in vbios.active if m.index == 12).values) == 4
    test_vbios, _ = check(nvtrust(VBIOS_TEST_RIM))
    assert test_vbios.version == "96.00.5E.00.01"


@pytest.mark.parametrize("name", sorted(EXPIRY))
def test_signatures_verify_before_the_signer_expires_and_are_stale_after(name: str) -> None:
    expiry = EXPIRY[name]
    assert check(nvtrust(name), expiry)[1] == ()
    _, stale = check(nvtrust(name), expiry.replace(day=expiry.day + 1))
    assert stale == (
        f"certificate 'CN=HCC RIM L4 Signer,O=NVIDIA Corporation,L=Santa Clara,ST=CA,C=US' "
        f"expired at {expiry.isoformat()} (verification time {expiry.replace(day=expiry.day + 1).isoformat()})",
    )


def test_every_shared_rim_signer_has_expired_by_september_2025() -> None:
    for name in EXPIRY:
        assert check(nvtrust(name), datetime(2025, 9, 6, tzinfo=UTC))[1]


def test_a_changed_golden_value_breaks_the_digest() -> None:
    text = nvtrust(VBIOS_RIM).decode()
    first = re.search(r'Hash0="([0-9a-f])', text)
    assert first
    data = (text[: first.start(1)] + ("1" if first.group(1) != "1" else "2") + text[first.end(1) :]).encode()
    with pytest.raises(SignatureError, match="content does not match its signed digest: it was changed after signing"):
        check(data)


def test_a_changed_version_breaks_the_digest() -> None:
    data = nvtrust(DRIVER_RIM).replace(b'colloquialVersion="545.00"', b'colloquialVersion="550.90.07"')
    with pytest.raises(SignatureError, match="content does not match its signed digest"):
        check(data)


def test_a_changed_signature_value_does_not_verify() -> None:
    text = nvtrust(DRIVER_RIM).decode()
    start = text.index("<ds:SignatureValue>") + len("<ds:SignatureValue>")
    data = (text[:start] + ("B" if text[start] != "B" else "C") + text[start + 1 :]).encode()
    with pytest.raises(SignatureError, match="XML signature does not verify with its signer's key"):
        check(data)


def test_a_changed_signed_info_does_not_verify() -> None:
    data = nvtrust(DRIVER_RIM).replace(b'<ds:Reference URI="">', b'<ds:Reference URI="" Id="x">')
    with pytest.raises(SignatureError, match="XML signature does not verify"):
        check(data)


def test_a_rim_signed_by_someone_else_does_not_reach_nvidias_root() -> None:
    data = resign(nvtrust(DRIVER_RIM), make_rim_ca())
    with pytest.raises(CertificateError, match="'CN=Test RIM Root' is self-signed but is not a configured root"):
        check(data)


def test_the_device_root_does_not_vouch_for_rims() -> None:
    with pytest.raises(
        CertificateError, match="'CN=NVIDIA CoRIM signing Root CA,O=NVIDIA,C=US' is self-signed but is not"
    ):
        check(nvtrust(DRIVER_RIM), roots=[device_root()])


def test_mismatched_blocks_counts_rim_indices_from_zero() -> None:
    golden = [
        GoldenMeasurement(0, "m0", (b"\x01",), True),
        GoldenMeasurement(1, "m1", (b"\x09", b"\x02"), True),
        GoldenMeasurement(2, "m2", (b"\x07",), False),
        GoldenMeasurement(3, "m3", (b"\x04",), True),
        GoldenMeasurement(NVDEC_INDEX, "nvdec", (b"\x05",), True),
    ]
    blocks = {1: b"\x01", 2: b"\x02", 3: b"\x00", 36: b"\x06"}
    assert mismatched_blocks(golden, blocks, nvdec_disabled=False) == (4, 36)  # block 4 is missing
    assert mismatched_blocks(golden, blocks, nvdec_disabled=True) == (4,)


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<SoftwareIdentity xmlns="http://standards.iso.org/iso/19770/-2/2015/schema.xsd">&x;</SoftwareIdentity>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;">]>
<r>&c;</r>"""


def _rim_text() -> str:
    return nvtrust(DRIVER_RIM).decode()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (XXE, "has a document type declaration"),
        (LAUGHS, "has a document type declaration"),
        (b"<r>&undefined;</r>", "not well-formed XML"),
        (b"<?pi x?>" + nvtrust(DRIVER_RIM), "has processing instructions"),
        (b"<r", "not well-formed XML"),
        (b" " * (4 << 20) + b"<r/>", "more than 4194304"),
        (b"<r/>", "must carry exactly one Signature"),
        (_rim_text().replace("<SoftwareIdentity ", '<SoftwareIdentity xml:base="x" ').encode(), "xml: attributes"),
        (_rim_text().replace('URI=""', 'URI="#tag"').encode(), 'must reference the whole document \\(URI=""\\)'),
        (
            _rim_text().replace("xmldsig#enveloped-signature", "xmldsig#base64").encode(),
            "must apply the enveloped-signature transform first",
        ),
        (
            _rim_text().replace("xmldsig-more#ecdsa-sha384", "xmldsig-more#hmac-sha384").encode(),
            "unsupported signature method 'http://www.w3.org/2001/04/xmldsig-more#hmac-sha384'",
        ),
        (
            _rim_text().replace("<ds:KeyInfo>", "<ds:Object/><ds:KeyInfo>").encode(),
            "Signature must hold exactly SignedInfo, SignatureValue, KeyInfo",
        ),
        (
            _rim_text().replace("</ds:Signature>", f'</ds:Signature><Signature xmlns="{DS_NS}"/>').encode(),
            "exactly one Signature",
        ),
        (
            _rim_text()
            .replace("<ns0:Entity", f'<ns0:Entity><Signature xmlns="{DS_NS}"/></ns0:Entity><ns0:Entity')
            .encode(),
            "exactly one Signature",
        ),
        (_rim_text().replace('colloquialVersion="545.00"', "").encode(), "Meta has no colloquialVersion"),
        (_rim_text().replace('index="7"', 'index="6"').encode(), "lists measurement index 6 twice"),
        (_rim_text().replace('index="7"', 'index="x7"').encode(), "index='x7', not a number from 0 to 253"),
        (_rim_text().replace('active="True"', 'active="yes"', 1).encode(), "no true/false 'active' attribute"),
        (_rim_text().replace('alternatives="2"', 'alternatives="3"', 1).encode(), "must carry exactly Hash0, Hash1"),
        (_rim_text().replace('size="48"', 'size="32"', 1).encode(), "Hash0 is not 32 bytes of hex"),
        (_rim_text().replace('type="Measurement"', 'type="File"', 1).encode(), "other than Measurement resources"),
    ],
)
def test_malformed_rims_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(EvidenceFormatError, match=reason):
        parse_rim(data, "RIM")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_rims_parse_or_are_refused(data: st.DataObject) -> None:
    rim = nvtrust(VBIOS_RIM)
    offset = data.draw(st.integers(0, len(rim) - 1))
    mutated = rim[:offset] + data.draw(st.binary(min_size=0, max_size=4)) + rim[offset + data.draw(st.integers(0, 8)) :]
    try:
        parsed = parse_rim(mutated, "RIM")
    except EvidenceFormatError:
        return
    try:
        verify_signed_xml(parsed.signed, signer_key(parsed, "RIM"), "RIM")
    except SignatureError:
        pass
