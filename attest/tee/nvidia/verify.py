"""Verify one NVIDIA confidential-computing GPU's attestation report, offline, at the given times.

authentic: the report's ECDSA P-384 signature by the attestation key in the leaf certificate; the
leaf's chain to the pinned NVIDIA root; the leaf's DICE FWID equal to the FWID the report carries; and,
for each RIM given, its XML signature and its signer's chain to the pinned RIM root.
fresh: the certificates' dates at ``times.of(DEVICE_CHAIN)``, the RIM signers' at ``times.of(RIM)``,
and the request nonce against ``expected_nonce`` when one is given.
acceptable: the policy's ``GpuRules`` (minimum driver and VBIOS versions, RIMs required), the RIMs'
versions against the report's, and the measurements against the RIMs' golden values.

The signed report has no debug field. NVIDIA's own verifiers infer "debug disabled" from the
measurements matching the RIMs (a developer-tools GPU runs other firmware), so ``debug`` is true here
only when the leaf's DiceTcbInfo sets the DICE ``debug`` operational flag; a policy that must exclude
debuggable GPUs requires RIMs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attest.certs import describe
from attest.errors import AttestError, CertificateError, EvidenceFormatError, PolicyViolation, SignatureError
from attest.tee.claims import Check, PlatformClaims, PlatformResult, Violation
from attest.tee.nvidia.certs import device_root, load_pem_chain, rim_root, verify_path
from attest.tee.nvidia.dice import DeviceIdentity, device_identity
from attest.tee.nvidia.rim import GoldenMeasurement, Rim, mismatched_blocks, parse_rim, signer_key
from attest.tee.nvidia.spdm import NONCE_SIZE, SIGNATURE_SIZE, SpdmReport, parse_report
from attest.tee.nvidia.versions import Component, parse_version
from attest.tee.nvidia.xmldsig import verify_signed_xml
from attest.tee.times import AppraisalTimes
from policies.attestation import GpuRules

__all__ = ["DEVICE_CHAIN", "FORMAT", "RIM", "verify_gpu"]

DEVICE_CHAIN = "device_chain"
"""Collateral name: the time at which the GPU's certificate chain is judged."""
RIM = "rim"
"""Collateral name: the time at which the RIM signers' certificate chains are judged."""
FORMAT = "nvidia-spdm-1.1"

_LABEL: dict[Component, str] = {"driver": "driver", "vbios": "VBIOS"}
_T = TypeVar("_T")


def verify_gpu(
    report: bytes,
    *,
    certificate_chain: bytes,
    rules: GpuRules,
    times: AppraisalTimes,
    expected_nonce: bytes | None = None,
    driver_rim: bytes | None = None,
    vbios_rim: bytes | None = None,
    device_roots: Sequence[x509.Certificate] | None = None,
    rim_roots: Sequence[x509.Certificate] | None = None,
) -> PlatformResult:
    """The claims of ``report`` (raw or hex) and every violation; EvidenceFormatError if it cannot be parsed.

    ``certificate_chain`` is the PEM chain the driver returned with the report, leaf first. The roots
    default to the NVIDIA roots shipped with this package; pass others only to test.
    """
    if expected_nonce is not None and len(expected_nonce) != NONCE_SIZE:
        raise AttestError(f"the expected GPU nonce must be {NONCE_SIZE} bytes, not {len(expected_nonce)}")
    spdm = parse_report(report)
    certs = load_pem_chain(certificate_chain, "device certificate chain")
    found = _Findings()

    path: tuple[x509.Certificate, ...] = ()
    try:
        path, stale = verify_path(
            certs[0],
            certs[1:],
            (device_root(),) if device_roots is None else tuple(device_roots),
            times.of(DEVICE_CHAIN),
            require_signing_usage=True,
        )
        found.add("fresh", *(f"device certificate chain: {reason}" for reason in stale))
    except CertificateError as exc:
        found.add("authentic", f"device certificate chain: {exc.reason}")
    identity = found.attempt(device_identity, certs[0])
    if identity is not None:
        found.attempt(_check_fwid, identity, spdm)
    found.attempt(_check_signature, spdm, certs[0])
    if expected_nonce is not None and expected_nonce != spdm.nonce:
        found.add("fresh", f"the report answers nonce {spdm.nonce.hex()}, not the expected {expected_nonce.hex()}")

    versions: dict[Component, str | None] = {"driver": spdm.opaque.driver_version, "vbios": spdm.opaque.vbios_version}
    found.attempt(_check_minimum, "driver", versions["driver"], rules.min_driver_version)
    found.attempt(_check_minimum, "vbios", versions["vbios"], rules.min_vbios_version)
    rims = _check_rims(
        found,
        spdm,
        versions,
        {"driver": driver_rim, "vbios": vbios_rim},
        rules,
        (rim_root(),) if rim_roots is None else tuple(rim_roots),
        times,
    )
    claims = PlatformClaims(
        platform="nvidia-gpu",
        format=FORMAT,
        evidence_sha256=hashlib.sha256(spdm.transcript).hexdigest(),
        report_data=spdm.nonce,
        debug=identity is not None and identity.debug,
        measurements={str(index): value.hex() for index, value in spdm.measurements.items()},
        signer="nvidia-device",
        chain=tuple(describe(c) for c in path),
        details=_details(spdm, certs[0], identity, rims),
    )
    return PlatformResult(claims, tuple(found.violations))


class _Findings:
    """The violations found so far, in the order the checks ran."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def add(self, check: Check, *reasons: str) -> None:
        self.violations += [Violation(check, reason) for reason in reasons]

    def attempt(self, check: Callable[..., _T], *args: object) -> _T | None:
        """``check(*args)``, or None and a violation: authentic for a signature or certificate error,
        acceptable for a policy violation."""
        try:
            return check(*args)
        except (SignatureError, CertificateError) as exc:
            self.add("authentic", exc.reason)
        except PolicyViolation as exc:
            self.add("acceptable", exc.reason)
        return None

    def passes(self, check: Callable[..., None], *args: object) -> bool:
        """Whether ``check(*args)`` raised nothing; what it raised is recorded as by ``attempt``."""
        count = len(self.violations)
        self.attempt(check, *args)
        return len(self.violations) == count


def _check_fwid(identity: DeviceIdentity, spdm: SpdmReport) -> None:
    reported = spdm.opaque.fwid
    if reported is None:
        raise CertificateError("the report's opaque data has no FWID to match the attestation certificate's")
    if identity.fwid.digest != reported:
        raise CertificateError(
            f"the attestation certificate's FWID {identity.fwid.digest.hex()} is not the report's FWID {reported.hex()}"
        )


def _check_signature(spdm: SpdmReport, leaf: x509.Certificate) -> None:
    try:
        key = leaf.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"the key of '{describe(leaf)}' cannot be read: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise SignatureError(f"'{describe(leaf)}' does not hold an ECDSA P-384 key, which signs GPU reports")
    half = SIGNATURE_SIZE // 2
    r, s = int.from_bytes(spdm.signature[:half], "big"), int.from_bytes(spdm.signature[half:], "big")
    try:
        key.verify(encode_dss_signature(r, s), spdm.signed, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise SignatureError(f"the report's signature does not verify with the key of '{describe(leaf)}'") from None


def _check_minimum(component: Component, reported: str | None, minimum: str | None) -> None:
    if minimum is None:
        return
    try:
        least = parse_version(minimum, component)
    except ValueError as exc:
        raise AttestError(f"the policy's minimum {_LABEL[component]} version: {exc}") from None
    if reported is None:
        raise PolicyViolation(f"the report states no {_LABEL[component]} version; the policy needs {minimum}")
    try:
        older = parse_version(reported, component) < least
    except ValueError as exc:
        raise PolicyViolation(f"the report's {_LABEL[component]} version cannot be compared: {exc}") from None
    if older:
        raise PolicyViolation(f"{_LABEL[component]} {reported} is older than the policy's minimum {minimum}")


def _check_rims(
    found: _Findings,
    spdm: SpdmReport,
    versions: dict[Component, str | None],
    given: dict[Component, bytes | None],
    rules: GpuRules,
    roots: tuple[x509.Certificate, ...],
    times: AppraisalTimes,
) -> dict[str, Any]:
    """Check each RIM given, then the measurements against the golden values of those that can be trusted."""
    results: dict[str, Any] = {}
    golden: dict[Component, tuple[GoldenMeasurement, ...]] = {}
    for component, data in given.items():
        what = f"{_LABEL[component]} RIM"
        if data is None:
            if rules.require_rims:
                found.add("acceptable", f"the policy requires RIMs and no {what} was given")
            continue
        try:
            rim = parse_rim(data, what)
        except EvidenceFormatError as exc:
            found.add("authentic", exc.reason)
            results[component] = {"parsed": False, "reason": exc.reason}
            continue
        signed = found.passes(_check_rim_signature, rim, what)
        authentic = found.passes(_check_rim_signer, found, rim, what, roots, times.of(RIM)) and signed
        matches = found.passes(_check_rim_version, component, rim.version, versions[component], what)
        if authentic and matches:
            golden[component] = rim.active
        results[component] = {
            "version": rim.version,
            "tag_id": rim.tag_id,
            "signer": describe(rim.signer),
            "signer_not_after": rim.signer.not_valid_after_utc.isoformat(),
            "authentic": authentic,
            "version_matches": matches,
        }
    _check_golden(found, spdm, golden, results)
    return results


def _check_rim_signature(rim: Rim, what: str) -> None:
    verify_signed_xml(rim.signed, signer_key(rim, what), what)


def _check_rim_signer(found: _Findings, rim: Rim, what: str, roots: tuple[x509.Certificate, ...], at: datetime) -> None:
    try:
        _, stale = verify_path(rim.signer, rim.signed.certificates[1:], roots, at, require_signing_usage=True)
    except CertificateError as exc:
        raise CertificateError(f"{what} signer chain: {exc.reason}") from None
    found.add("fresh", *(f"{what} signer chain: {reason}" for reason in stale))


def _check_rim_version(component: Component, rim: str, reported: str | None, what: str) -> None:
    """PolicyViolation unless the RIM describes the driver or VBIOS version the GPU runs."""
    try:
        same = reported is not None and parse_version(rim, component) == parse_version(reported, component)
    except ValueError as exc:
        raise PolicyViolation(f"the {what}'s version cannot be compared: {exc}") from None
    if not same:
        raise PolicyViolation(f"the {what} is for {_LABEL[component]} {rim}, the GPU reports {reported or 'none'}")


def _check_golden(
    found: _Findings,
    spdm: SpdmReport,
    golden: dict[Component, tuple[GoldenMeasurement, ...]],
    results: dict[str, Any],
) -> None:
    """Each trusted RIM's active measurements against the report's blocks; the two RIMs must not overlap."""
    if len(golden) == 2:
        both = {m.index for m in golden["driver"]} & {m.index for m in golden["vbios"]}
        if both:
            found.add("acceptable", f"the driver and VBIOS RIMs both set measurement indices {sorted(both)}")
    for component, measurements in golden.items():
        blocks = mismatched_blocks(measurements, spdm.measurements, nvdec_disabled=spdm.opaque.nvdec0_disabled)
        results[component]["mismatched_blocks"] = list(blocks)
        if blocks:
            listed = ", ".join(str(b) for b in blocks)
            found.add("acceptable", f"measurement blocks {listed} match none of the {_LABEL[component]} RIM's values")


def _details(
    spdm: SpdmReport, leaf: x509.Certificate, identity: DeviceIdentity | None, rims: dict[str, Any]
) -> dict[str, Any]:
    values = spdm.opaque.values
    return {
        "driver_version": spdm.opaque.driver_version,
        "vbios_version": spdm.opaque.vbios_version,
        "fwid": None if spdm.opaque.fwid is None else spdm.opaque.fwid.hex(),
        "certificate_fwid": None if identity is None else identity.fwid.digest.hex(),
        "chip": values.get("chip_info") or values.get("chip_sku"),
        "project": values.get("project"),
        "responder_nonce": spdm.responder_nonce.hex(),
        "requested_index": spdm.requested_index,
        "slot": spdm.slot,
        "ueid": str(leaf.serial_number),
        "device_identity": None if identity is None else _identity(identity),
        "opaque": dict(values),
        "rims": rims,
    }


def _identity(identity: DeviceIdentity) -> dict[str, Any]:
    return {
        "layout": identity.layout,
        "vendor": identity.vendor,
        "model": identity.model,
        "version": identity.version,
        "svn": identity.svn,
        "flags": None if identity.flags is None else identity.flags.hex(),
        "fwids": [{"hash_algorithm": f.hash_algorithm, "digest": f.digest.hex()} for f in identity.fwids],
    }
