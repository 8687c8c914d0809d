"""``verify_snp``: an SEV-SNP attestation report judged offline, at given times, against the policy.

authentic: the VCEK/VLEK chains to AMD's pinned ARK for the report's product, it signed the report,
the report's SIGNING_KEY names that kind of key, and (VCEK) the key was derived for this chip and the
REPORTED_TCB; fresh: each certificate is valid at its collateral time; acceptable: ``SnpRules``.

A masked CHIP_ID (all zero, the platform's MASK_CHIP_ID option) cannot be compared with the VCEK's
hwID; that comparison is then skipped and recorded, since the VCEK's signature already binds the chip.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attest.certs import check_valid_at, describe
from attest.errors import AttestError, CertificateError, SignatureError
from attest.tee.claims import PlatformClaims, PlatformResult, Violation
from attest.tee.snp.appraise import appraise
from attest.tee.snp.certs import (
    EndorsementKey,
    check_carried_roots,
    load_certificates,
    parse_endorsement_key,
    verify_endorsement_chain,
)
from attest.tee.snp.certtable import parse_cert_table
from attest.tee.snp.report import SIGNING_KEY_NONE, SIGNING_KEY_VLEK, SnpReport, parse_report
from attest.tee.snp.tcb import PRODUCTS, Product, product_from_cpuid, product_named, tcb_components
from attest.tee.times import AppraisalTimes
from policies.attestation import SnpRules

__all__ = [
    "CERTIFICATE_NAMES",
    "COLLATERAL_ARK",
    "COLLATERAL_ASK",
    "COLLATERAL_ASVK",
    "COLLATERAL_VCEK",
    "COLLATERAL_VLEK",
    "verify_snp",
]

COLLATERAL_VCEK = "vcek"
"""AppraisalTimes name for the VCEK certificate's validity."""
COLLATERAL_VLEK = "vlek"
"""... for the VLEK certificate's."""
COLLATERAL_ASK = "ask"
"""... for the ASK (SEV-<product>), which issues VCEKs."""
COLLATERAL_ASVK = "asvk"
"""... for the ASVK (SEV-VLEK-<product>), which issues VLEKs."""
COLLATERAL_ARK = "ark"
"""... for AMD's root (ARK-<product>)."""

CERTIFICATE_NAMES = ("vcek", "vlek", "ask", "asvk", "ark")
"""Keys of ``certificates``: the same names as the certificate table's GUIDs (the ASVK may come as ``ask``)."""


def verify_snp(
    report: bytes,
    *,
    certificates: Mapping[str, bytes] | None = None,
    auxblob: bytes | None = None,
    rules: SnpRules,
    times: AppraisalTimes,
) -> PlatformResult:
    """The claims of ``report`` and every violation found; EvidenceFormatError if anything is unparsable.

    ``auxblob`` is the extended report's certificate table; ``certificates`` (DER or PEM, by
    ``CERTIFICATE_NAMES``) replace its entries of the same name, e.g. a VCEK fetched from AMD's KDS
    when the host's copy is stale. AMD's ASKs and ASVKs are pinned, so a VCEK or VLEK alone suffices.
    """
    parsed = parse_report(report)
    supplied = _supplied(certificates, auxblob)
    carried = [
        c for name in ("ask", "asvk", "ark") if name in supplied for c in load_certificates(supplied[name], name)
    ]
    signer = "vlek" if parsed.signing_key == SIGNING_KEY_VLEK else "vcek"
    leaf = supplied.get(signer) or supplied.get("vcek" if signer == "vlek" else "vlek")
    key = parse_endorsement_key(leaf, signer.upper()) if leaf is not None else None

    authentic: list[str] = []
    fresh: list[str] = []
    product = product_from_cpuid(*parsed.cpuid[:2]) if parsed.cpuid else None
    if parsed.cpuid and product is None:
        authentic.append(
            f"CPUID family {parsed.cpuid[0]:#x} model {parsed.cpuid[1]:#x} is not a product whose AMD root is "
            f"pinned ({', '.join(PRODUCTS)})"
        )
    if parsed.signing_key == SIGNING_KEY_NONE:
        authentic.append("the report is unsigned (SIGNING_KEY 7): nothing vouches for it")
    try:
        check_carried_roots(carried)
    except CertificateError as exc:
        authentic.append(exc.reason)

    path: tuple[x509.Certificate, ...] = ()
    if key is None and parsed.signing_key != SIGNING_KEY_NONE:
        authentic.append(f"no {signer.upper()} certificate was given: the report's signature cannot be checked")
    if key is not None:
        try:
            path, product = verify_endorsement_chain(key, carried, product)
        except CertificateError as exc:
            authentic.append(exc.reason)
        if key.kind is not None and key.kind != signer:
            authentic.append(
                f"the report names the {signer.upper()} as its signer (SIGNING_KEY {parsed.signing_key}) "
                f"but the certificate is a {key.kind.upper()}"
            )
        product = product or product_named(key.product_name)  # unverified then: used to read the TCBs only
        if parsed.signing_key != SIGNING_KEY_NONE:
            authentic += _failures(_check_signature, parsed, key)
        authentic += _failures(_check_tcb, parsed, key, product)
        if key.kind == "vcek" and any(parsed.chip_id):
            authentic += _failures(_check_chip_id, parsed, key, product)
        fresh += _stale(key, path, times)
    if any(parsed.signature_padding):
        authentic.append(
            "the signature field has non-zero bytes after R and S: they are not signed, and AMD zeroes them"
        )

    violations = [Violation("authentic", r) for r in authentic] + [Violation("fresh", r) for r in fresh]
    violations += [Violation("acceptable", r) for r in appraise(parsed, product, rules)]
    return PlatformResult(_claims(parsed, product, key, path), tuple(violations))


def _supplied(certificates: Mapping[str, bytes] | None, auxblob: bytes | None) -> dict[str, bytes]:
    merged = parse_cert_table(auxblob).certificates() if auxblob is not None else {}
    for name, data in (certificates or {}).items():
        if name not in CERTIFICATE_NAMES:
            raise AttestError(
                f"unknown SEV-SNP certificate name {name!r} (expected one of {', '.join(CERTIFICATE_NAMES)})"
            )
        merged[name] = data
    return merged


def _failures(check: Callable[..., None], *args: object) -> list[str]:
    """The reason ``check`` raised, as a list; empty when it passed."""
    try:
        check(*args)
    except (SignatureError, CertificateError) as exc:
        return [exc.reason]
    return []


def _check_signature(report: SnpReport, key: EndorsementKey) -> None:
    """SignatureError unless the key signed bytes 0x000..0x29F (ECDSA P-384, SHA-384; R and S little-endian)."""
    name = key.kind.upper() if key.kind else "certificate"
    try:
        public = key.cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"the {name}'s public key cannot be read: {exc}") from None
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp384r1":
        raise SignatureError(f"the {name}'s key is not an ECDSA P-384 key")
    signature = encode_dss_signature(report.signature_r, report.signature_s)
    try:
        public.verify(signature, report.signed, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise SignatureError(f"the report signature does not verify with the {name}'s key") from None


def _check_tcb(report: SnpReport, key: EndorsementKey, product: Product | None) -> None:
    """CertificateError unless the key was derived for the REPORTED_TCB (a VLEK without TCB extensions is exempt)."""
    if key.kind != "vcek" and not key.tcb:
        return
    name = (key.kind or "certificate").upper()
    if product is None:
        raise CertificateError(f"the {name}'s TCB cannot be compared with REPORTED_TCB: the product is unknown")
    reported = tcb_components(report.reported_tcb, product)
    missing = [c for c in reported if c not in key.tcb]
    if missing:
        raise CertificateError(f"the {name} lacks the TCB extensions for {', '.join(missing)}")
    differ = [f"{c} {key.tcb[c]} in the {name}, {v} in the report" for c, v in reported.items() if key.tcb[c] != v]
    if differ:
        raise CertificateError(f"the {name} was issued for another TCB than REPORTED_TCB: {'; '.join(differ)}")


def _check_chip_id(report: SnpReport, key: EndorsementKey, product: Product | None) -> None:
    """CertificateError unless the VCEK's hwID is the report's CHIP_ID (Turin: its first 8 bytes)."""
    if key.hw_id is None:
        raise CertificateError("the VCEK has no hwID extension to compare with CHIP_ID")
    expected = report.chip_id[:8] if product == "Turin" else report.chip_id
    if key.hw_id != expected:
        at = next((i for i, (a, b) in enumerate(zip(key.hw_id, expected, strict=False)) if a != b), len(expected))
        raise CertificateError(
            f"the VCEK belongs to another chip: its hwID ({len(key.hw_id)} bytes, {key.hw_id[:8].hex()}...) differs "
            f"from the report's CHIP_ID ({len(expected)} bytes, {expected[:8].hex()}...) from byte {at} on"
        )


def _stale(key: EndorsementKey, path: tuple[x509.Certificate, ...], times: AppraisalTimes) -> list[str]:
    """Validity of each certificate at its own collateral time; the key alone when no path was found."""
    if key.kind is None:
        return []
    names = (key.kind, "asvk" if key.kind == "vlek" else "ask", COLLATERAL_ARK)
    reasons = []
    for cert, name in zip(path or (key.cert,), names, strict=False):
        try:
            check_valid_at(cert, times.of(name))
        except CertificateError as exc:
            reasons.append(exc.reason)
    return reasons


def _claims(
    report: SnpReport, product: Product | None, key: EndorsementKey | None, path: tuple[x509.Certificate, ...]
) -> PlatformClaims:
    def tcb(raw: int) -> dict[str, int] | dict[str, str]:
        return tcb_components(raw, product) if product else {"raw": f"{raw:#018x}"}

    details: dict[str, Any] = {
        "product": product,
        "policy": report.policy.to_json(),
        "platform_info": report.platform_info.to_json(),
        "vmpl": report.vmpl,
        "guest_svn": report.guest_svn,
        "family_id": report.family_id.hex(),
        "image_id": report.image_id.hex(),
        "host_data": report.host_data.hex(),
        "id_key_digest": report.id_key_digest.hex(),
        "author_key_digest": report.author_key_digest.hex(),
        "author_key_en": report.author_key_en,
        "mask_chip_key": report.mask_chip_key,
        "chip_id": report.chip_id.hex(),
        "chip_id_masked": not any(report.chip_id),
        "report_id": report.report_id.hex(),
        "report_id_ma": report.report_id_ma.hex(),
        "firmware_current": "{}.{}.{}".format(*report.current_version),
        "firmware_committed": "{}.{}.{}".format(*report.committed_version),
        "endorsement_key_product": key.product_name if key else None,
    }
    if report.cpuid:
        details["cpuid"] = dict(zip(("family", "model", "stepping"), report.cpuid, strict=True))
    if report.launch_mit_vector is not None:
        details["launch_mit_vector"] = f"{report.launch_mit_vector:#x}"
        details["current_mit_vector"] = f"{report.current_mit_vector:#x}"
    if report.reserved_nonzero:
        details["reserved_nonzero"] = list(report.reserved_nonzero)
    if report.trailing:
        details["trailing_bytes"] = report.trailing
    return PlatformClaims(
        platform="sev-snp",
        format=f"sev-snp-report-v{report.version}",
        evidence_sha256=hashlib.sha256(report.raw).hexdigest(),
        report_data=report.report_data,
        debug=report.policy.debug,
        measurements={"measurement": report.measurement.hex()},
        tcb={
            "reported": tcb(report.reported_tcb),
            "committed": tcb(report.committed_tcb),
            "current": tcb(report.current_tcb),
            "launch": tcb(report.launch_tcb),
        },
        signer={0: "vcek", 1: "vlek"}.get(report.signing_key),
        chain=tuple(describe(c) for c in path),
        details=details,
    )
