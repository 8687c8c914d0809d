"""Enveloped XML signatures (W3C XML-DSig) over a whole document, as NVIDIA signs its RIMs.

Only the narrow profile a reference manifest needs is accepted, and everything else is refused, not
skipped: one ``Signature``, a direct child of the root; one ``Reference`` with ``URI=""`` (the whole
document); the enveloped-signature transform, optionally followed by a canonicalization; ECDSA with
SHA-256/384/512; the signer's certificate first in ``KeyInfo/X509Data``. No XPath or XSLT transforms,
no references by id, so no signature-wrapping games: what was digested is the document the caller reads.

Parsing never resolves entities, reads a DTD or touches the network, and a document type declaration
is refused outright (a RIM has none), which closes XXE and entity expansion. Processing instructions
are refused too: canonical XML would include them.

C14N 1.1 (what NVIDIA names) is computed with lxml's C14N 1.0. The two differ only in how ``xml:id``
and ``xml:base`` of omitted ancestors are carried into a document subset, and the only subset signed
here is ``SignedInfo``, whose ancestors are the document root and ``Signature``. Documents that put any
``xml:`` attribute there are refused, so the 1.0 output is exactly the 1.1 output for what is accepted.
"""

from __future__ import annotations

import base64
import binascii
import copy
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from attest.certs import UNREADABLE
from attest.errors import EvidenceFormatError, SignatureError
from attest.tee.nvidia.certs import check_readable

__all__ = ["MAX_XML_BYTES", "SignedXml", "parse_signed_xml", "verify_signed_xml"]

MAX_XML_BYTES = 4 << 20
"""A RIM is about 20 KiB; four megabytes is far beyond any real one."""

DS = "{http://www.w3.org/2000/09/xmldsig#}"
_XML_NS = "{http://www.w3.org/XML/1998/namespace}"
_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_CANONICALIZATIONS = {  # algorithm -> (exclusive, with comments)
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315": (False, False),
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments": (False, True),
    "http://www.w3.org/2006/12/xml-c14n11": (False, False),
    "http://www.w3.org/2006/12/xml-c14n11#WithComments": (False, True),
    "http://www.w3.org/2001/10/xml-exc-c14n#": (True, False),
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments": (True, True),
}
_SIGNATURES: dict[str, type[hashes.HashAlgorithm]] = {
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": hashes.SHA512,
}
_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "http://www.w3.org/2001/04/xmlenc#sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmlenc#sha512": hashes.SHA512,
}


@dataclass(frozen=True, slots=True)
class SignedXml:
    """A parsed document and the parts of its enveloped signature."""

    root: etree._Element
    position: int
    """Where the Signature is among the root's children."""
    signed_info: etree._Element
    canonicalization: str
    signature_hash: type[hashes.HashAlgorithm]
    digest_hash: type[hashes.HashAlgorithm]
    digest_canonicalization: str
    digest: bytes
    signature: bytes
    certificates: tuple[x509.Certificate, ...]
    """KeyInfo's certificates in document order, the signer first."""


def parse_signed_xml(data: bytes, what: str) -> SignedXml:
    """The document and its signature's parts; EvidenceFormatError when either is not in the profile."""
    root = _parse(data, what)
    signatures = list(root.iter(f"{DS}Signature"))
    if len(signatures) != 1 or signatures[0].getparent() is not root:
        raise EvidenceFormatError(f"the {what} must carry exactly one Signature, as a child of its root")
    signature = signatures[0]
    for element in (signature, *signature.iterancestors()):
        if any(name.startswith(_XML_NS) for name in element.attrib):
            raise EvidenceFormatError(
                f"the {what} has xml: attributes above SignedInfo, which C14N 1.0 and 1.1 treat apart"
            )
    signed_info, value, key_info = _children(signature, ("SignedInfo", "SignatureValue", "KeyInfo"), what)
    method, algorithm, reference = _children(
        signed_info, ("CanonicalizationMethod", "SignatureMethod", "Reference"), what
    )
    if reference.get("URI") != "":
        raise EvidenceFormatError(f'the {what}\'s signature must reference the whole document (URI="")')
    transforms, digest_method, digest_value = _children(reference, ("Transforms", "DigestMethod", "DigestValue"), what)
    steps = [_algorithm(t, what) for t in transforms]
    if [t.tag for t in transforms] != [f"{DS}Transform"] * len(steps) or not steps or steps[0] != _ENVELOPED:
        raise EvidenceFormatError(f"the {what}'s signature must apply the enveloped-signature transform first")
    if len(steps) > 2 or (len(steps) == 2 and steps[1] not in _CANONICALIZATIONS):
        raise EvidenceFormatError(f"the {what}'s signature uses unsupported transforms {steps[1:]}")
    return SignedXml(
        root=root,
        position=root.index(signature),
        signed_info=signed_info,
        canonicalization=_known(_algorithm(method, what), _CANONICALIZATIONS, "canonicalization", what),
        signature_hash=_SIGNATURES[_known(_algorithm(algorithm, what), _SIGNATURES, "signature method", what)],
        digest_hash=_DIGESTS[_known(_algorithm(digest_method, what), _DIGESTS, "digest method", what)],
        digest_canonicalization=steps[1] if len(steps) == 2 else "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
        digest=_base64(digest_value, f"the {what}'s DigestValue"),
        signature=_base64(value, f"the {what}'s SignatureValue"),
        certificates=_certificates(key_info, what),
    )


def verify_signed_xml(signed: SignedXml, key: ec.EllipticCurvePublicKey, what: str) -> None:
    """SignatureError unless the document's digest and the SignedInfo signature both verify with ``key``."""
    document = copy.deepcopy(signed.root)
    _remove_keeping_tail(document[signed.position])
    exclusive, _ = _CANONICALIZATIONS[signed.digest_canonicalization]
    canonical = etree.tostring(document, method="c14n", exclusive=exclusive, with_comments=False)
    digest = hashes.Hash(signed.digest_hash())
    digest.update(canonical)
    if digest.finalize() != signed.digest:
        raise SignatureError(f"the {what}'s content does not match its signed digest: it was changed after signing")
    exclusive, comments = _CANONICALIZATIONS[signed.canonicalization]
    signed_info = etree.tostring(signed.signed_info, method="c14n", exclusive=exclusive, with_comments=comments)
    half = (key.curve.key_size + 7) // 8
    if len(signed.signature) != 2 * half:
        raise SignatureError(f"the {what}'s SignatureValue is {len(signed.signature)} bytes, not {2 * half}")
    r, s = int.from_bytes(signed.signature[:half], "big"), int.from_bytes(signed.signature[half:], "big")
    try:
        key.verify(encode_dss_signature(r, s), signed_info, ec.ECDSA(signed.signature_hash()))
    except InvalidSignature:
        raise SignatureError(f"the {what}'s XML signature does not verify with its signer's key") from None


def _parse(data: bytes, what: str) -> etree._Element:
    if len(data) > MAX_XML_BYTES:
        raise EvidenceFormatError(f"the {what} is {len(data)} bytes, more than {MAX_XML_BYTES}")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise EvidenceFormatError(f"the {what} is not well-formed XML: {exc}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise EvidenceFormatError(f"the {what} has a document type declaration, which a RIM never needs")
    nodes = (*root.itersiblings(preceding=True), *root.itersiblings(), *root.iter())
    if any(isinstance(n, etree._ProcessingInstruction) for n in nodes):
        raise EvidenceFormatError(f"the {what} has processing instructions")
    if any(isinstance(n, etree._Entity) for n in nodes):
        raise EvidenceFormatError(f"the {what} has unresolved entity references")
    return root


def _children(parent: etree._Element, names: tuple[str, ...], what: str) -> list[etree._Element]:
    """The element children of ``parent``, which must be exactly ``names`` in the XML-DSig namespace, in order."""
    children = [c for c in parent if isinstance(c.tag, str)]
    if [c.tag for c in children] != [f"{DS}{n}" for n in names]:
        local = etree.QName(parent).localname
        raise EvidenceFormatError(f"the {what}'s {local} must hold exactly {', '.join(names)}")
    return children


def _algorithm(element: etree._Element, what: str) -> str:
    if any(isinstance(c.tag, str) for c in element):
        raise EvidenceFormatError(
            f"the {what}'s {etree.QName(element).localname} has parameters, which are not supported"
        )
    return element.get("Algorithm") or ""


def _known(algorithm: str, table: dict[str, object], kind: str, what: str) -> str:
    if algorithm not in table:
        raise EvidenceFormatError(f"the {what} uses the unsupported {kind} {algorithm!r}")
    return algorithm


def _base64(element: etree._Element, what: str) -> bytes:
    try:
        return base64.b64decode("".join((element.text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise EvidenceFormatError(f"{what} is not base64") from None


def _certificates(key_info: etree._Element, what: str) -> tuple[x509.Certificate, ...]:
    (data,) = _children(key_info, ("X509Data",), what)
    found = data.findall(f"{DS}X509Certificate")
    if not found:
        raise EvidenceFormatError(f"the {what}'s KeyInfo carries no X509Certificate")
    certificates = []
    for position, element in enumerate(found, 1):
        where = f"X509Certificate {position} in the {what}"
        try:
            cert = x509.load_der_x509_certificate(_base64(element, where))
        except UNREADABLE as exc:
            raise EvidenceFormatError(f"{where} is not a certificate: {exc}") from None
        check_readable(cert, where)
        certificates.append(cert)
    return tuple(certificates)


def _remove_keeping_tail(element: etree._Element) -> None:
    """Remove an element but not the text after it, which lxml keeps on the element (the transform keeps it)."""
    parent, previous = element.getparent(), element.getprevious()
    if element.tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)
