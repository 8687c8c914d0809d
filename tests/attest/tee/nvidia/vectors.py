"""The NVIDIA vectors (nvtrust's Hopper report, chain and RIMs; trustee's chain cases and Blackwell report)."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attest.tee.times import AppraisalTimes
from tests.conftest import shared_path

T = datetime(2024, 6, 1, tzinfo=UTC)
"""Every device certificate and every shared RIM signer is valid then."""

HOPPER_NONCE = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb"
HOPPER_FWID = "f5c384aebb579217a2c66b17ed0f28e6a9b8d639041acd7b4721cec004f7275494ba94bb5cdfdb3055ee051762b1f75d"
DRIVER_RIM = "Driver_RIM_test_no_gpu.swidtag"
VBIOS_RIM = "1010_0200_882_960074001A_PROD.swidtag"
VBIOS_TEST_RIM = "1010_0200_882_96005E0001_test_no_gpu.swidtag"


def nvtrust(name: str) -> bytes:
    return shared_path("vectors", "tee", "nvidia", "nvtrust", name).read_bytes()


def trustee(name: str) -> bytes:
    return shared_path("vectors", "tee", "nvidia", "trustee", name).read_bytes()


def hopper_report() -> bytes:
    """The report as nvtrust stores it: hex text."""
    return nvtrust("hopperAttestationReport.txt")


def hopper_binary() -> bytes:
    return bytes.fromhex(hopper_report().decode())


def hopper_chain() -> bytes:
    return nvtrust("hopperCertChain.txt")


def times(at: datetime = T, **overrides: datetime) -> AppraisalTimes:
    return AppraisalTimes(at, overrides)


def flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    return data[:offset] + bytes([data[offset] ^ mask]) + data[offset + 1 :]


def pem(certs: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


def chain_certs(data: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(data)
