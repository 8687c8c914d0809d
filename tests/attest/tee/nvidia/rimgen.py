"""RIMs signed by a test CA: a real NVIDIA RIM with its version and golden values changed, then re-signed.

Only NVIDIA can sign a RIM for the report's driver and VBIOS versions, so the measurement comparison is
exercised with these; the real RIMs prove the signature verification against NVIDIA's root.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from tests.attest.tee.nvidia.vectors import T
from tests.certgen import key_usage, make_cert

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
SWID = "{http://standards.iso.org/iso/19770/-2/2015/schema.xsd}"
C14N11 = "http://www.w3.org/2006/12/xml-c14n11"


@dataclass
class RimCa:
    root: x509.Certificate
    signer: x509.Certificate
    signer_key: ec.EllipticCurvePrivateKey


def make_rim_ca() -> RimCa:
    root_key, signer_key = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
    root = make_cert(
        "Test RIM Root", root_key, ca=True, usage=key_usage("key_cert_sign"), not_before=T.replace(year=2020)
    )
    signer = make_cert(
        "Test RIM Signer",
        signer_key,
        (root, root_key),
        ca=False,
        usage=key_usage("digital_signature"),
        not_before=T.replace(year=2023),
        not_after=T.replace(year=2025),
    )
    return RimCa(root, signer, signer_key)


def resign(
    rim: bytes,
    ca: RimCa,
    *,
    version: str | None = None,
    golden: Mapping[int, bytes] | None = None,
    active: Mapping[int, bool] | None = None,
) -> bytes:
    """``rim`` with Meta's version and the given RIM indices' Hash0 (and active flag) replaced, signed by ``ca``."""
    root = etree.fromstring(rim)
    root.remove(root.find(f"{{{DS_NS}}}Signature"))
    if version is not None:
        root.find(f"{SWID}Meta").set("colloquialVersion", version)
    golden, active = golden or {}, active or {}
    for resource in root.find(f"{SWID}Payload"):
        index = int(resource.get("index"))
        if index in golden:
            for name in [k for k in resource.attrib if "}Hash" in k]:
                del resource.attrib[name]
            resource.set("{http://www.w3.org/2001/04/xmlenc#sha384}Hash0", golden[index].hex())
            resource.set("alternatives", "1")
        if index in active:
            resource.set("active", "True" if active[index] else "False")
    return sign(root, ca)


def sign(root: etree._Element, ca: RimCa) -> bytes:
    digest = hashlib.sha384(etree.tostring(root, method="c14n")).digest()
    ds = f"{{{DS_NS}}}"
    signature = etree.SubElement(root, f"{ds}Signature", nsmap={"ds": DS_NS})
    signed_info = etree.SubElement(signature, f"{ds}SignedInfo")
    etree.SubElement(signed_info, f"{ds}CanonicalizationMethod", Algorithm=C14N11)
    etree.SubElement(
        signed_info, f"{ds}SignatureMethod", Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
    )
    reference = etree.SubElement(signed_info, f"{ds}Reference", URI="")
    transforms = etree.SubElement(reference, f"{ds}Transforms")
    etree.SubElement(transforms, f"{ds}Transform", Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature")
    etree.SubElement(transforms, f"{ds}Transform", Algorithm=C14N11)
    etree.SubElement(reference, f"{ds}DigestMethod", Algorithm="http://www.w3.org/2001/04/xmldsig-more#sha384")
    etree.SubElement(reference, f"{ds}DigestValue").text = base64.b64encode(digest).decode()
    value = etree.SubElement(signature, f"{ds}SignatureValue")
    data = etree.SubElement(etree.SubElement(signature, f"{ds}KeyInfo"), f"{ds}X509Data")
    for cert in (ca.signer, ca.root):
        etree.SubElement(data, f"{ds}X509Certificate").text = base64.b64encode(cert.public_bytes(Encoding.DER)).decode()
    der = ca.signer_key.sign(etree.tostring(signed_info, method="c14n"), ec.ECDSA(hashes.SHA384()))
    r, s = decode_dss_signature(der)
    value.text = base64.b64encode(r.to_bytes(48, "big") + s.to_bytes(48, "big")).decode()
    return etree.tostring(root)
