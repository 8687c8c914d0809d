from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attest.errors import CertificateError, EvidenceFormatError
from attest.tee.nvidia.certs import device_root, load_pem_chain, rim_root, verify_path
from tests.attest.tee.nvidia.vectors import T, chain_certs, hopper_chain, nvtrust, pem, trustee

GPU = "device certificate chain"


def _verify(certs: tuple[x509.Certificate, ...], at: datetime = T) -> tuple[tuple[x509.Certificate, ...], tuple]:
    return verify_path(certs[0], certs[1:], [device_root()], at, require_signing_usage=True)


def test_the_pinned_roots_are_nvidias() -> None:
    assert device_root() == x509.load_pem_x509_certificate(nvtrust("verifier_device_root.pem"))
    assert device_root() == x509.load_pem_x509_certificate(trustee("nvidia_device_root.pem"))
    assert rim_root() == x509.load_pem_x509_certificate(nvtrust("verifier_RIM_root.pem"))
    assert device_root().subject.rfc4514_string() == "O=NVIDIA,CN=NVIDIA Device Identity CA"


def test_the_hopper_chain_reaches_the_pinned_root() -> None:
    certs = load_pem_chain(hopper_chain(), GPU)
    path, stale = _verify(certs)
    assert [c.subject.rfc4514_string().split(",")[0] for c in path] == [
        "CN=GH100 A01 GSP FMC LF",
        "CN=GH100 A01 GSP BROM",
        "C=US",
        "O=NVIDIA Corporation",
        "O=NVIDIA",
    ]
    assert path[-1] == device_root() and stale == ()


def test_trustee_case_1_is_the_valid_chain() -> None:
    # Trustee's own test expects case 1 to verify: it is byte for byte nvtrust's chain.
    assert trustee("hopper_cert_chain_case1.txt") == hopper_chain()


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        (2, "the signing certificate 'O=NVIDIA,CN=NVIDIA Device Identity CA' is a trusted root itself"),
        (3, "'CN=GH100 A01 GSP BROM.*' was issued by '.*NVIDIA GH100 Provisioner ICA 1', which is neither"),
        (4, "'CN=GH100 A01 GSP BROM.*' may not sign: it has neither keyUsage digitalSignature"),
    ],
)
def test_trustees_broken_chains_fail_each_for_its_reason(case: int, reason: str) -> None:
    with pytest.raises(CertificateError, match=reason):
        _verify(load_pem_chain(trustee(f"hopper_cert_chain_case{case}.txt"), GPU))


@pytest.mark.parametrize("position", [0, 1, 2, 3])
def test_a_flipped_bit_in_any_certificate_breaks_the_path(position: int) -> None:
    certs = list(chain_certs(hopper_chain()))
    der = bytearray(certs[position].public_bytes(Encoding.DER))
    der[-1] ^= 0x01  # inside the signature value: the certificate still parses
    certs[position] = x509.load_der_x509_certificate(bytes(der))
    issuer, subject = (re.escape(c.subject.rfc4514_string()) for c in (certs[position + 1], certs[position]))
    with pytest.raises(CertificateError, match=f"^'{issuer}' did not sign '{subject}': the signature does not verify"):
        _verify(tuple(certs))


def test_a_tampered_root_copy_in_the_evidence_does_not_matter() -> None:
    certs = list(chain_certs(hopper_chain()))
    der = bytearray(certs[-1].public_bytes(Encoding.DER))
    der[-1] ^= 0x01
    certs[-1] = x509.load_der_x509_certificate(bytes(der))
    path, _ = _verify(tuple(certs))
    assert path[-1] == device_root()


def test_another_root_is_not_nvidias() -> None:
    certs = load_pem_chain(hopper_chain(), GPU)
    with pytest.raises(CertificateError, match="'O=NVIDIA,CN=NVIDIA Device Identity CA' is self-signed but is not"):
        verify_path(certs[0], certs[1:], [rim_root()], T, require_signing_usage=True)


def test_dates_outside_validity_are_stale_not_forged() -> None:
    certs = load_pem_chain(hopper_chain(), GPU)
    path, stale = _verify(certs, datetime(2021, 1, 1, tzinfo=UTC))
    assert len(path) == 5
    # The leaf and the boot ROM certificate date from 2020, the CAs above them from 2021 and 2022.
    assert [r.split("'")[1] for r in stale] == [
        "C=US,O=NVIDIA Corporation,CN=NVIDIA GH100 Provisioner ICA 1",
        "O=NVIDIA Corporation,CN=NVIDIA GH100 Identity",
        "O=NVIDIA,CN=NVIDIA Device Identity CA",
    ]
    assert all("is not valid until" in r and "verification time 2021-01-01" in r for r in stale)


def test_a_forged_chain_stays_forged_at_any_time() -> None:
    certs = list(chain_certs(hopper_chain()))
    del certs[2]  # no Provisioner ICA
    with pytest.raises(CertificateError, match="which is neither a configured root nor in the bundle"):
        _verify(tuple(certs), datetime(2021, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "is not a PEM certificate list"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "is not a PEM certificate list"),
        (b"x" * (65 << 10), "more than 65536"),
        (pem(chain_certs(hopper_chain()) * 2), "holds 10 certificates, more than 8"),
    ],
)
def test_unreadable_chains(data: bytes, reason: str) -> None:
    with pytest.raises(EvidenceFormatError, match=reason):
        load_pem_chain(data, GPU)
