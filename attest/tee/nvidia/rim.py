"""Reference integrity manifests: NVIDIA's signed golden measurements for one driver or one VBIOS.

A RIM is a TCG SWID tag (ISO/IEC 19770-2:2015) with an enveloped XML signature. ``Meta`` names the
version it describes (``colloquialVersion``); ``Payload`` lists ``Resource`` elements, one per
measurement index, each with its permitted values (``Hash0`` .. ``Hash{alternatives-1}``) and whether
it is ``active``. The driver RIM and the VBIOS RIM each make some indices active; together they cover
what the GPU measures.

NVIDIA numbers RIM measurements from 0 while SPDM numbers measurement blocks from 1: RIM index ``i``
is block ``i + 1`` (nvtrust compares ``golden[i]`` with the report's ``measurements[i]``, a list built
from block ``i + 1``). When the report says NVDEC0 is disabled, the NVDEC firmware (RIM index 35) is
not loaded and its measurement is not compared, as NVIDIA's verifiers do.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree

from attest.certs import describe
from attest.errors import EvidenceFormatError, SignatureError
from attest.tee.nvidia.xmldsig import SignedXml, parse_signed_xml

__all__ = [
    "NVDEC_INDEX",
    "GoldenMeasurement",
    "Rim",
    "mismatched_blocks",
    "parse_rim",
    "signer_key",
]

SWID = "{http://standards.iso.org/iso/19770/-2/2015/schema.xsd}"
NVDEC_INDEX = 35
"""The RIM index of the NVDEC0 firmware measurement."""

_MAX_INDEX = 0xFD  # block index = RIM index + 1, and block 0xFF is reserved
_MAX_ALTERNATIVES = 16
_MAX_DIGEST = 64
_DIGITS = frozenset(string.digits)
_HEX_DIGITS = frozenset(string.hexdigits)
_BOOLEAN = {"true": True, "1": True, "false": False, "0": False}


@dataclass(frozen=True, slots=True)
class GoldenMeasurement:
    """The values one measurement may take; ``block`` is the SPDM block it is compared with."""

    index: int
    name: str
    values: tuple[bytes, ...]
    active: bool

    @property
    def block(self) -> int:
        return self.index + 1


@dataclass(frozen=True, slots=True)
class Rim:
    """A parsed RIM, not yet verified: its signature and signer chain are checked separately."""

    signed: SignedXml
    tag_id: str
    version: str
    product: str | None
    measurements: tuple[GoldenMeasurement, ...]

    @property
    def signer(self) -> x509.Certificate:
        return self.signed.certificates[0]

    @property
    def active(self) -> tuple[GoldenMeasurement, ...]:
        return tuple(m for m in self.measurements if m.active)


def parse_rim(data: bytes, what: str) -> Rim:
    """The RIM in ``data``; EvidenceFormatError naming the element or attribute that is wrong."""
    signed = parse_signed_xml(data, what)
    root = signed.root
    if root.tag != f"{SWID}SoftwareIdentity":
        raise EvidenceFormatError(f"the {what} is not a SWID tag (root element {etree.QName(root).localname})")
    meta, payload = _one(root, "Meta", what), _one(root, "Payload", what)
    version = meta.get("colloquialVersion") or ""
    if not version.strip():
        raise EvidenceFormatError(f"the {what}'s Meta has no colloquialVersion")
    measurements: dict[int, GoldenMeasurement] = {}
    for resource in payload:
        if not isinstance(resource.tag, str):
            continue  # a comment
        golden = _resource(resource, what)
        if golden.index in measurements:
            raise EvidenceFormatError(f"the {what} lists measurement index {golden.index} twice")
        measurements[golden.index] = golden
    if not measurements:
        raise EvidenceFormatError(f"the {what} lists no measurements")
    return Rim(signed, root.get("tagId") or "", version.strip(), meta.get("product"), tuple(measurements.values()))


def signer_key(rim: Rim, what: str) -> ec.EllipticCurvePublicKey:
    """The signer certificate's key; SignatureError unless it is an ECDSA key (the only kind RIMs use)."""
    try:
        key = rim.signer.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"the {what} signer's key cannot be read: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SignatureError(f"the {what} signer '{describe(rim.signer)}' has a {type(key).__name__}, not an EC key")
    return key


def mismatched_blocks(
    golden: Iterable[GoldenMeasurement], measurements: Mapping[int, bytes], *, nvdec_disabled: bool
) -> tuple[int, ...]:
    """The SPDM blocks whose value is none of the RIM's alternatives (a missing block is a mismatch)."""
    return tuple(
        m.block
        for m in golden
        if m.active and not (nvdec_disabled and m.index == NVDEC_INDEX) and measurements.get(m.block) not in m.values
    )


def _one(root: etree._Element, name: str, what: str) -> etree._Element:
    found = root.findall(f"{SWID}{name}")
    if len(found) != 1:
        raise EvidenceFormatError(f"the {what} must have exactly one {name}, it has {len(found)}")
    return found[0]


def _resource(element: etree._Element, what: str) -> GoldenMeasurement:
    if element.tag != f"{SWID}Resource" or element.get("type") != "Measurement":
        raise EvidenceFormatError(f"the {what}'s Payload holds something other than Measurement resources")
    name = element.get("name") or ""
    where = f"the {what}'s measurement {name or '(unnamed)'}"
    index = _number(element, "index", 0, _MAX_INDEX, where)
    alternatives = _number(element, "alternatives", 1, _MAX_ALTERNATIVES, where)
    size = _number(element, "size", 1, _MAX_DIGEST, where)
    active = _BOOLEAN.get((element.get("active") or "").lower())
    if active is None:
        raise EvidenceFormatError(f"{where} has no true/false 'active' attribute")
    hashes = {etree.QName(key).localname: value for key, value in element.attrib.items() if "}" in key}
    expected = {f"Hash{i}" for i in range(alternatives)}
    if set(hashes) != expected:
        raise EvidenceFormatError(f"{where} must carry exactly {', '.join(sorted(expected))}")
    values = []
    for i in range(alternatives):
        text = hashes[f"Hash{i}"]
        if len(text) != 2 * size or not set(text) <= _HEX_DIGITS:
            raise EvidenceFormatError(f"{where} Hash{i} is not {size} bytes of hex")
        values.append(bytes.fromhex(text))
    return GoldenMeasurement(index, name, tuple(values), active)


def _number(element: etree._Element, attribute: str, low: int, high: int, where: str) -> int:
    text = element.get(attribute) or ""
    if not (0 < len(text) <= 3 and set(text) <= _DIGITS) or not low <= int(text) <= high:
        raise EvidenceFormatError(f"{where} has {attribute}={text!r}, not a number from {low} to {high}")
    return int(text)
