"""The SGX extensions of a PCK certificate (Intel SGX PCK Certificate and CRL Profile, 1.2.840.113741.1.13.1).

The PCK certificate is where Intel states the platform's TCB (the SGX component SVNs, PCESVN and CPUSVN)
and its FMSPC, the key to the TCB info that judges it. ``cryptography`` leaves the extension raw, so it
is read here: every entry is an (OID, value) SEQUENCE, each required entry must appear exactly once
with the type and size the profile gives it, and entries the profile may add later are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cryptography import x509

from attest.certs import describe
from attest.errors import EvidenceFormatError
from attest.tee.tdx import der

__all__ = ["SGX_EXTENSIONS_OID", "SGX_TYPES", "PckExtensions", "pck_extensions", "read_sgx_extensions"]

SGX_EXTENSIONS_OID = x509.ObjectIdentifier("1.2.840.113741.1.13.1")

SGX_TYPES = {0: "Standard", 1: "Scalable", 2: "ScalableWithIntegrity"}

_ROOT = SGX_EXTENSIONS_OID.dotted_string
_TCB = f"{_ROOT}.2"
_CONFIGURATION = f"{_ROOT}.7"
_CONFIGURATION_FLAGS = {
    f"{_CONFIGURATION}.1": "dynamic_platform",
    f"{_CONFIGURATION}.2": "cached_keys",
    f"{_CONFIGURATION}.3": "smt_enabled",
}


@dataclass(frozen=True, slots=True)
class PckExtensions:
    """What the PCK certificate says about the platform."""

    ppid: bytes
    sgx_tcb_components: tuple[int, ...]
    """SGX TCB component SVNs 01 to 16, in order."""
    pcesvn: int
    cpusvn: bytes
    pce_id: bytes
    fmspc: bytes
    sgx_type: int
    """0: Standard, 1: Scalable, 2: Scalable with integrity."""
    platform_instance_id: bytes | None = None
    """Platform CA certificates only: the multi-package platform's instance."""
    configuration: Mapping[str, bool] = field(default_factory=dict)
    """Platform CA certificates only: dynamic_platform, cached_keys, smt_enabled."""


def pck_extensions(cert: x509.Certificate) -> PckExtensions:
    """The SGX extensions of ``cert``; EvidenceFormatError when they are missing or malformed."""
    try:
        extension = cert.extensions.get_extension_for_oid(SGX_EXTENSIONS_OID)
    except x509.ExtensionNotFound:
        raise EvidenceFormatError(f"certificate '{describe(cert)}' has no SGX extensions: it is not a PCK") from None
    except ValueError as exc:
        raise EvidenceFormatError(f"certificate '{describe(cert)}' has malformed extensions: {exc}") from None
    raw = extension.value
    if not isinstance(raw, x509.UnrecognizedExtension):  # pragma: no cover - cryptography does not know the OID
        raise EvidenceFormatError("the SGX extensions were not left raw")
    return read_sgx_extensions(raw.value)


def read_sgx_extensions(raw: bytes) -> PckExtensions:
    """The SGX extensions from the extension's DER value (a SEQUENCE of OID-value SEQUENCEs)."""
    tag, contents = der.single(raw, "the SGX extensions")
    if tag != der.SEQUENCE:
        raise EvidenceFormatError(f"the SGX extensions: expected a DER SEQUENCE, found tag {tag:#04x}")
    entries = _entries(contents, "the SGX extensions")
    tcb = _entries(_take(entries, _TCB, der.SEQUENCE, "the SGX TCB"), "the SGX TCB")
    components = tuple(_svn(tcb, f"{_TCB}.{n}", 255, f"sgxtcbcomp{n:02d}svn") for n in range(1, 17))
    configuration: dict[str, bool] = {}
    if _CONFIGURATION in entries:
        flags = _entries(_take(entries, _CONFIGURATION, der.SEQUENCE, "the configuration"), "the configuration")
        for oid, name in _CONFIGURATION_FLAGS.items():
            if oid in flags:
                configuration[name] = der.read_boolean(_take(flags, oid, der.BOOLEAN, name), name)
    sgx_type = _integer(_take(entries, f"{_ROOT}.5", der.ENUMERATED, "SGX type"), "SGX type")
    if sgx_type not in SGX_TYPES:
        raise EvidenceFormatError(f"the PCK certificate's SGX type {sgx_type} is not one Intel defines")
    return PckExtensions(
        ppid=_octets(entries, f"{_ROOT}.1", 16, "PPID"),
        sgx_tcb_components=components,
        pcesvn=_svn(tcb, f"{_TCB}.17", 0xFFFF, "PCESVN"),
        cpusvn=_octets(tcb, f"{_TCB}.18", 16, "CPUSVN"),
        pce_id=_octets(entries, f"{_ROOT}.3", 2, "PCE-ID"),
        fmspc=_octets(entries, f"{_ROOT}.4", 6, "FMSPC"),
        sgx_type=sgx_type,
        platform_instance_id=_octets(entries, f"{_ROOT}.6", 16, "PlatformInstanceID")
        if f"{_ROOT}.6" in entries
        else None,
        configuration=MappingProxyType(configuration),
    )


def _entries(contents: bytes, what: str) -> dict[str, der.Tlv]:
    """The (OID, value) SEQUENCEs in a SEQUENCE's contents, by OID; an OID may appear only once."""
    found: dict[str, der.Tlv] = {}
    for entry_tag, entry in der.elements(contents, what):
        parts = der.elements(entry, what) if entry_tag == der.SEQUENCE else []
        if len(parts) != 2 or parts[0][0] != der.OID:
            raise EvidenceFormatError(f"{what}: each entry must be a SEQUENCE of an OID and a value")
        oid = der.read_oid(parts[0][1], what)
        if oid in found:
            raise EvidenceFormatError(f"{what}: {oid} appears twice")
        found[oid] = parts[1]
    return found


def _take(entries: Mapping[str, der.Tlv], oid: str, tag: int, name: str) -> bytes:
    """The contents of entry ``oid``, which must exist and carry ``tag``."""
    if oid not in entries:
        raise EvidenceFormatError(f"the PCK certificate's SGX extensions lack {name} ({oid})")
    found, contents = entries[oid]
    if found != tag:
        raise EvidenceFormatError(f"the PCK certificate's {name} ({oid}) has DER tag {found:#04x}, not {tag:#04x}")
    return contents


def _octets(entries: Mapping[str, der.Tlv], oid: str, size: int, name: str) -> bytes:
    value = _take(entries, oid, der.OCTET_STRING, name)
    if len(value) != size:
        raise EvidenceFormatError(f"the PCK certificate's {name} is {len(value)} bytes, not {size}")
    return value


def _svn(entries: Mapping[str, der.Tlv], oid: str, limit: int, name: str) -> int:
    value = _integer(_take(entries, oid, der.INTEGER, name), name)
    if not 0 <= value <= limit:
        raise EvidenceFormatError(f"the PCK certificate's {name} is out of range (0..{limit})")
    return value


def _integer(contents: bytes, name: str) -> int:
    if len(contents) > 8:
        raise EvidenceFormatError(f"the PCK certificate's {name} is {len(contents)} bytes long, too long for an SVN")
    return der.read_integer(contents, f"the PCK certificate's {name}")
