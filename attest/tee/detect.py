"""Turning files given on the command line into an evidence bundle: formats are detected from bytes.

``modelgate attest verify`` takes an evidence bundle, or a bare SNP report, TDX quote or GPU report with
its certificates (``--cert``) and collateral (``--collateral DIR``). A bare report has no capture time and
no nonce of its own: its freshness rests on the ``--nonce`` the verifier gives.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attest.certs import UNREADABLE
from attest.errors import AttestError, EvidenceFormatError
from attest.tee.claims import Platform
from attest.tee.evidence import MAX_BUNDLE_BYTES, PARTS, EvidenceBundle, EvidenceItem
from sbom.fileio import DocumentTooLarge, read_capped

__all__ = ["FORMATS", "detect_platform", "evidence_from_files", "read_collateral_dir"]

FORMATS: Mapping[str, Platform | None] = {"bundle": None, "sev-snp": "sev-snp", "tdx": "tdx",
                                          "nvidia-gpu": "nvidia-gpu"}
"""What ``--format`` accepts: an evidence bundle or one platform's bare evidence."""

_SNP_REPORT_SIZE = 0x4A0
_TDX_TEE_TYPE = 0x81
_TDREPORT_SIZE = 1024
_HEX_TEXT = re.compile(rb"\s*(?:[0-9a-fA-F]{2}\s*)+")
_SNP_ROLES = (("SEV-VCEK", "vcek"), ("SEV-VLEK-", "asvk"), ("SEV-VLEK", "vlek"), ("ARK-", "ark"), ("SEV-", "ask"))


def detect_platform(data: bytes) -> str:
    """``bundle`` or a platform name, from the bytes alone; EvidenceFormatError when nothing fits."""
    if data.lstrip()[:1] == b"{":
        return "bundle"
    if len(data) >= 8:
        version, key_type, tee_type = struct.unpack_from("<HHI", data)
        if version in (4, 5) and tee_type == _TDX_TEE_TYPE:
            return "tdx"
    if len(data) == _TDREPORT_SIZE:
        return "tdx"  # likely a TDREPORT, offered as evidence: the TDX parser refuses it and says why
    if len(data) >= _SNP_REPORT_SIZE and struct.unpack_from("<I", data)[0] in (2, 3, 5):
        return "sev-snp"
    if data[:2] == b"\x11\xe0" or data.lstrip()[:4].lower() == b"11e0":
        return "nvidia-gpu"
    raise EvidenceFormatError("the evidence is not an evidence bundle, an SEV-SNP report, a TDX quote or an "
                              "NVIDIA GPU attestation report (give --format if it is one)")


def evidence_from_files(data: bytes, *, fmt: str | None = None, certificates: Sequence[bytes] = (),
                        collateral: Mapping[str, bytes] | None = None) -> EvidenceBundle:
    """An evidence bundle from a bundle file or bare evidence plus certificates and collateral."""
    kind = fmt or detect_platform(data)
    if kind not in FORMATS:
        raise AttestError(f"--format must be one of {', '.join(FORMATS)}, not {kind!r}")
    if kind == "bundle":
        if certificates or collateral:
            raise AttestError("an evidence bundle carries its own certificates and collateral; "
                              "--cert and --collateral are for bare evidence")
        return EvidenceBundle.from_json_bytes(data)
    platform = cast(Platform, FORMATS[kind])
    parts: dict[str, bytes] = {"quote" if platform == "tdx" else "report": _unhex(data, platform)}
    parts |= dict(collateral or {})
    if platform == "sev-snp":
        parts |= _snp_certificates(certificates)
    elif platform == "nvidia-gpu" and certificates:
        parts["certificate_chain"] = b"".join(certificates)
    elif certificates:
        raise AttestError("a TDX quote carries its PCK chain itself; give collateral with --collateral DIR")
    return EvidenceBundle((EvidenceItem(platform, parts),), "file")


def read_collateral_dir(folder: Path) -> dict[str, bytes]:
    """Files in ``folder`` named after evidence parts (``tcb_info.json``, ``pck_crl.der``...), by part name."""
    known = set().union(*(required | optional for required, optional in PARTS.values()))
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise AttestError(f"cannot read the collateral folder {folder}: {exc.strerror or exc}") from None
    found: dict[str, bytes] = {}
    for path in entries:
        name = path.name.split(".", 1)[0]
        if name not in known or not path.is_file():
            continue
        if name in found:
            raise AttestError(f"{folder} holds two files for {name}")
        try:
            found[name] = read_capped(path, MAX_BUNDLE_BYTES)
        except (OSError, DocumentTooLarge) as exc:
            raise AttestError(f"cannot read {path}: {exc}") from None
    if not found:
        raise AttestError(f"{folder} holds no collateral (expected files such as tcb_info.json, qe_identity.json, "
                          "pck_crl.der, root_crl.der, tcb_info_chain.pem and qe_identity_chain.pem)")
    return found


def _unhex(data: bytes, platform: Platform) -> bytes:
    """NVIDIA's tools write the GPU report as hex text; every other format is binary."""
    if platform == "nvidia-gpu" and _HEX_TEXT.fullmatch(data):
        return bytes.fromhex(data.decode("ascii"))
    return data


def _snp_certificates(blobs: Sequence[bytes]) -> dict[str, bytes]:
    """AMD certificates by role (vcek, vlek, ask, asvk, ark), recognised by AMD's subject names."""
    parts: dict[str, bytes] = {}
    for blob in blobs:
        for cert in _certificates(blob):
            name = ",".join(str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME))
            role = next((r for prefix, r in _SNP_ROLES if name.startswith(prefix)), None)
            if role is None:
                raise AttestError(f"certificate CN={name} is not an AMD ARK, ASK, ASVK, VCEK or VLEK")
            parts[role] = cert.public_bytes(Encoding.DER)
    return parts


def _certificates(blob: bytes) -> list[x509.Certificate]:
    try:
        if b"-----BEGIN CERTIFICATE-----" in blob:
            return x509.load_pem_x509_certificates(blob)
        return [x509.load_der_x509_certificate(blob)]
    except UNREADABLE as exc:
        raise AttestError(f"a --cert file is not a PEM or DER certificate: {exc}") from None
