from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attest.errors import AttestError, EvidenceFormatError
from attest.tee.claims import PlatformResult
from attest.tee.nvidia import DEVICE_CHAIN, RIM, parse_report, verify_gpu
from attest.tee.nvidia.certs import rim_root
from attest.tee.nvidia.spdm import REQUEST_SIZE
from policies.attestation import GpuRules
from tests.attest.tee.nvidia.rimgen import make_rim_ca, resign
from tests.attest.tee.nvidia.vectors import (
    DRIVER_RIM,
    HOPPER_FWID,
    HOPPER_NONCE,
    VBIOS_RIM,
    chain_certs,
    flip,
    hopper_binary,
    hopper_chain,
    hopper_report,
    nvtrust,
    pem,
    times,
    trustee,
)

RECORD = REQUEST_SIZE + 8


def verify(report: bytes | None = None, chain: bytes | None = None, **options: object) -> PlatformResult:
    options.setdefault("rules", GpuRules())
    options.setdefault("times", times())
    return verify_gpu(report or hopper_report(), certificate_chain=chain or hopper_chain(), **options)  # type: ignore[arg-type]


def reasons(result: PlatformResult) -> list[tuple[str, str]]:
    return [(v.check, v.reason) for v in result.violations]


def test_the_nvtrust_hopper_report_is_authentic() -> None:
    result = verify()
    assert result.violations == () and result.authentic
    claims = result.claims
    assert (claims.platform, claims.format, claims.signer) == ("nvidia-gpu", "nvidia-spdm-1.1", "nvidia-device")
    assert claims.report_data.hex() == HOPPER_NONCE and claims.report_data.hex().startswith("931d8dd0")
    assert claims.evidence_sha256 == hashlib.sha256(hopper_binary()).hexdigest()
    assert not claims.debug and claims.tcb == {}
    assert len(claims.measurements) == 64 and claims.measurements["2"].startswith("8048dfd18fe229bf")
    assert claims.chain[0].startswith("CN=GH100 A01 GSP FMC LF") and claims.chain[-1].endswith("Device Identity CA")
    details = claims.details
    assert (details["driver_version"], details["vbios_version"]) == ("550.90.07", "96.00.9F.00.01")
    assert details["fwid"] == details["certificate_fwid"] == HOPPER_FWID
    assert (details["chip"], details["project"]) == ("882", "1010")
    assert details["device_identity"]["layout"] == "composite-device-id"
    assert details["opaque"]["nvdec0_status"] == "disabled" and details["rims"] == {}
    assert claims.to_json()["report_data"] == HOPPER_NONCE


def test_raw_and_hex_reports_verify_alike() -> None:
    assert verify(hopper_binary()).claims == verify().claims


def test_the_blackwell_report_is_authentic() -> None:
    result = verify(trustee("blackwellAttestationReport.txt"), trustee("blackwell_cert_chain_case1.txt"))
    assert result.violations == ()
    assert result.claims.chain[0].startswith("CN=GB20X A01 GSP FMC LF")
    assert result.claims.details["device_identity"]["model"] == "GB20X A01 GSP"
    assert result.claims.details["driver_version"] == "595.58.03"


def test_trustee_case_1_verifies() -> None:
    assert verify(chain=trustee("hopper_cert_chain_case1.txt")).violations == ()


def test_case_2_only_the_root() -> None:
    assert reasons(verify(chain=trustee("hopper_cert_chain_case2.txt"))) == [
        (
            "authentic",
            "device certificate chain: the signing certificate 'O=NVIDIA,CN=NVIDIA Device Identity CA' "
            "is a trusted root itself",
        ),
        (
            "authentic",
            "certificate 'O=NVIDIA,CN=NVIDIA Device Identity CA' has no DICE FWID extension "
            "(2.23.133.5.4.1 or 2.23.133.5.4.1.1): it is not a GPU attestation key",
        ),
        ("authentic", "the report's signature does not verify with the key of 'O=NVIDIA,CN=NVIDIA Device Identity CA'"),
    ]


def test_case_3_a_missing_intermediate() -> None:
    result = verify(chain=trustee("hopper_cert_chain_case3.txt"))
    assert reasons(result) == [
        (
            "authentic",
            "device certificate chain: 'CN=GH100 A01 GSP BROM,O=NVIDIA Corporation,C=US,2.5.4.5=41431D480FE5E87274' "
            "was issued by 'C=US,O=NVIDIA Corporation,CN=NVIDIA GH100 Provisioner ICA 1', which is neither a "
            "configured root nor in the bundle",
        )
    ]
    assert not result.authentic and result.claims.chain == ()


def test_case_4_a_missing_leaf() -> None:
    found = reasons(verify(chain=trustee("hopper_cert_chain_case4.txt")))
    assert [check for check, _ in found] == ["authentic"] * 3
    assert "GSP BROM" in found[0][1] and "may not sign: it has neither keyUsage digitalSignature" in found[0][1]
    assert "has no DICE FWID extension" in found[1][1]
    assert "the report's signature does not verify with the key of 'CN=GH100 A01 GSP BROM" in found[2][1]


def test_a_flipped_bit_in_a_measurement_breaks_the_signature() -> None:
    result = verify(flip(hopper_binary(), RECORD + 7 + 48 + 7 + 10))  # inside block 2's value
    assert reasons(result) == [
        ("authentic", "the report's signature does not verify with the key of " + f"'{result.claims.chain[0]}'")
    ]
    assert result.claims.measurements["2"] != verify().claims.measurements["2"]


def test_a_flipped_bit_in_the_nonce_breaks_the_signature() -> None:
    result = verify(flip(hopper_binary(), 4))
    assert [r for _, r in reasons(result)] == [
        f"the report's signature does not verify with the key of '{result.claims.chain[0]}'"
    ]
    assert result.claims.report_data.hex().startswith("921d8dd0")


def test_a_flipped_bit_in_the_signature() -> None:
    found = reasons(verify(flip(hopper_binary(), len(hopper_binary()) - 5)))
    assert len(found) == 1 and found[0][0] == "authentic" and "signature does not verify" in found[0][1]


def test_a_flipped_bit_in_the_opaque_fwid_is_caught_twice() -> None:
    data = hopper_binary()
    offset = data.index(bytes.fromhex(HOPPER_FWID))
    found = [r for _, r in reasons(verify(flip(data, offset)))]
    assert found[0] == f"the attestation certificate's FWID {HOPPER_FWID} is not the report's FWID f4{HOPPER_FWID[2:]}"
    assert "signature does not verify" in found[1]


@pytest.mark.parametrize("position", [0, 1, 2, 3])
def test_a_flipped_bit_in_each_certificate(position: int) -> None:
    certs = chain_certs(hopper_chain())
    der = certs[position].public_bytes(Encoding.DER)
    certs[position] = x509.load_der_x509_certificate(flip(der, len(der) - 1))
    found = reasons(verify(chain=pem(certs)))
    issuer, subject = (re.escape(c.subject.rfc4514_string()) for c in (certs[position + 1], certs[position]))
    assert found[0][0] == "authentic"
    assert re.fullmatch(f"device certificate chain: '{issuer}' did not sign '{subject}': .*", found[0][1])
    assert len(found) == 1  # the leaf's key and FWID are untouched: the report still verifies with it


def test_a_wrong_root() -> None:
    found = reasons(verify(device_roots=[rim_root()]))
    assert found == [
        (
            "authentic",
            "device certificate chain: 'O=NVIDIA,CN=NVIDIA Device Identity CA' is self-signed but is not a "
            "configured root",
        )
    ]


def test_a_time_before_the_chain_was_issued_is_stale_not_forged() -> None:
    early = datetime(2021, 6, 1, tzinfo=UTC)
    result = verify(times=times(early))
    assert result.authentic and {c for c, _ in reasons(result)} == {"fresh"}
    assert len(result.violations) == 3 and all(early.isoformat() in r for _, r in reasons(result))
    assert verify(times=times(datetime(2021, 6, 1, tzinfo=UTC), **{DEVICE_CHAIN: times().at})).violations == ()


def test_the_expected_nonce() -> None:
    assert verify(expected_nonce=bytes.fromhex(HOPPER_NONCE)).violations == ()
    assert reasons(verify(expected_nonce=bytes(32))) == [
        ("fresh", f"the report answers nonce {HOPPER_NONCE}, not the expected {'00' * 32}")
    ]
    with pytest.raises(AttestError, match="must be 32 bytes, not 31"):
        verify(expected_nonce=bytes(31))


def test_truncated_and_padded_reports_are_unparsable() -> None:
    with pytest.raises(EvidenceFormatError, match="the signature needs 96 bytes, 95 remain"):
        verify(hopper_binary()[:-1])
    with pytest.raises(EvidenceFormatError, match="1 unsigned bytes follow the signature"):
        verify(hopper_binary() + b"\0")
    with pytest.raises(EvidenceFormatError, match="not a PEM certificate list"):
        verify(chain=b"not a chain")


@pytest.mark.parametrize(
    ("rules", "found"),
    [
        (GpuRules(min_driver_version="550.90.07", min_vbios_version="96.00.9F.00.01"), []),
        (GpuRules(min_driver_version="550.90.7", min_vbios_version="96.0.9f.0.1"), []),
        (GpuRules(min_driver_version="550.100"), ["driver 550.90.07 is older than the policy's minimum 550.100"]),
        (
            GpuRules(min_driver_version="550.90.07.1"),
            ["driver 550.90.07 is older than the policy's minimum 550.90.07.1"],
        ),
        (
            GpuRules(min_vbios_version="96.00.A0.00.00"),
            ["VBIOS 96.00.9F.00.01 is older than the policy's minimum 96.00.A0.00.00"],
        ),
        (GpuRules(min_vbios_version="96.00.9E.FF.FF"), []),
    ],
)
def test_minimum_versions_compare_numerically(rules: GpuRules, found: list[str]) -> None:
    assert reasons(verify(rules=rules)) == [("acceptable", r) for r in found]


def test_an_unreadable_policy_version_is_the_operators_error() -> None:
    with pytest.raises(AttestError, match="the policy's minimum VBIOS version: 'latest' is not a dotted hex vbios"):
        verify(rules=GpuRules(min_vbios_version="latest"))


def test_required_rims_that_are_missing() -> None:
    assert reasons(verify(rules=GpuRules(require_rims=True))) == [
        ("acceptable", "the policy requires RIMs and no driver RIM was given"),
        ("acceptable", "the policy requires RIMs and no VBIOS RIM was given"),
    ]


def test_the_shared_rims_are_genuine_but_for_other_versions() -> None:
    result = verify(rules=GpuRules(require_rims=True), driver_rim=nvtrust(DRIVER_RIM), vbios_rim=nvtrust(VBIOS_RIM))
    assert reasons(result) == [
        ("acceptable", "the driver RIM is for driver 545.00, the GPU reports 550.90.07"),
        ("acceptable", "the VBIOS RIM is for VBIOS 96.00.74.00.1A, the GPU reports 96.00.9F.00.01"),
    ]
    rims = result.claims.details["rims"]
    assert rims["driver"]["authentic"] and not rims["driver"]["version_matches"]
    assert rims["vbios"]["signer_not_after"] == "2025-09-05T08:35:22+00:00"
    assert "mismatched_blocks" not in rims["vbios"]  # another version's golden values are not compared


def test_rims_judged_after_their_signers_expired() -> None:
    late = times(**{RIM: datetime(2025, 9, 6, tzinfo=UTC)})
    found = reasons(verify(times=late, driver_rim=nvtrust(DRIVER_RIM), vbios_rim=nvtrust(VBIOS_RIM)))
    assert [c for c, _ in found] == ["fresh", "acceptable", "fresh", "acceptable"]
    assert found[0][1].startswith("driver RIM signer chain: certificate 'CN=HCC RIM L4 Signer")
    assert "expired at 2025-06-26T06:10:12+00:00" in found[0][1]
    assert found[2][1].startswith("VBIOS RIM signer chain:") and "expired at 2025-09-05T08:35:22" in found[2][1]


def test_a_tampered_rim_is_not_authentic() -> None:
    tampered = nvtrust(DRIVER_RIM).replace(b'colloquialVersion="545.00"', b'colloquialVersion="550.90.07"')
    result = verify(driver_rim=tampered)
    assert reasons(result) == [
        ("authentic", "the driver RIM's content does not match its signed digest: it was changed after signing")
    ]
    assert not result.authentic and result.claims.details["rims"]["driver"]["authentic"] is False


def test_an_unparsable_rim() -> None:
    assert reasons(verify(vbios_rim=b"<r/>")) == [
        ("authentic", "the VBIOS RIM must carry exactly one Signature, as a child of its root")
    ]


def _matching_rims(**changes: dict[int, bytes]) -> tuple[bytes, bytes, object]:
    """Driver and VBIOS RIMs for exactly this report, signed by a test CA; ``changes`` overrides golden values."""
    ca = make_rim_ca()
    measured = parse_report(hopper_report()).measurements
    driver, vbios = nvtrust(DRIVER_RIM), nvtrust(VBIOS_RIM)
    driver_golden = {i: measured[i + 1] for i in (7, *range(21, 41))} | changes.get("driver", {})
    vbios_golden = {i: measured[i + 1] for i in (0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12)} | changes.get("vbios", {})
    return (
        resign(driver, ca, version="550.90.07", golden=driver_golden),
        resign(vbios, ca, version="96.00.9F.00.01", golden=vbios_golden),
        ca.root,
    )


def test_matching_rims_accept_the_report() -> None:
    driver, vbios, root = _matching_rims()
    result = verify(rules=GpuRules(require_rims=True), driver_rim=driver, vbios_rim=vbios, rim_roots=[root])
    assert result.violations == ()
    assert result.claims.details["rims"]["driver"]["mismatched_blocks"] == []


def test_a_measurement_that_matches_no_golden_value() -> None:
    driver, vbios, root = _matching_rims(driver={22: bytes(48)}, vbios={0: b"\x11" * 48})
    found = reasons(verify(driver_rim=driver, vbios_rim=vbios, rim_roots=[root]))
    assert found == [
        ("acceptable", "measurement blocks 23 match none of the driver RIM's values"),
        ("acceptable", "measurement blocks 1 match none of the VBIOS RIM's values"),
    ]


def test_the_nvdec_measurement_is_skipped_when_nvdec_is_off() -> None:
    driver, vbios, root = _matching_rims(driver={35: b"\x22" * 48})
    assert verify(driver_rim=driver, vbios_rim=vbios, rim_roots=[root]).violations == ()


def test_rims_that_claim_the_same_index() -> None:
    ca = make_rim_ca()
    measured = parse_report(hopper_report()).measurements
    driver = resign(
        nvtrust(DRIVER_RIM), ca, version="550.90.07", golden={7: measured[8], 1: measured[2]}, active={1: True}
    )
    golden = {i: measured[i + 1] for i in range(13)}
    vbios = resign(nvtrust(VBIOS_RIM), ca, version="96.00.9F.00.01", golden=golden)
    found = reasons(verify(driver_rim=driver, vbios_rim=vbios, rim_roots=[ca.root]))
    assert ("acceptable", "the driver and VBIOS RIMs both set measurement indices [1]") in found


def test_a_test_signed_rim_does_not_reach_nvidias_root() -> None:
    driver, _, _ = _matching_rims()
    found = reasons(verify(driver_rim=driver))
    assert found == [
        ("authentic", "driver RIM signer chain: 'CN=Test RIM Root' is self-signed but is not a configured root")
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 4116), st.integers(1, 255))
def test_any_change_to_the_signed_report_is_caught(offset: int, mask: int) -> None:
    try:
        result = verify(flip(hopper_binary(), offset, mask))
    except EvidenceFormatError:
        return
    assert not result.authentic


# cryptography warns (it does not raise) about some malformed names, e.g. a three-letter country.
@pytest.mark.filterwarnings("ignore:Attribute's length must be:UserWarning")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 3), st.data())
def test_mutated_certificates_give_a_result_or_a_format_error(position: int, data: st.DataObject) -> None:
    certs = chain_certs(hopper_chain())
    der = certs[position].public_bytes(Encoding.DER)
    offset = data.draw(st.integers(0, len(der) - 1))
    try:
        certs[position] = x509.load_der_x509_certificate(flip(der, offset, data.draw(st.integers(1, 255))))
    except (ValueError, x509.InvalidVersion):
        return  # cryptography refuses it; so does load_pem_chain (tested above)
    try:
        result = verify(chain=pem(certs))
    except EvidenceFormatError:
        return
    assert not result.authentic or certs[position].public_bytes(Encoding.DER) == der
