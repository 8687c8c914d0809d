"""ECDSA P-256 signatures as Intel encodes them: raw r||s and raw x||y, 32 bytes each, big-endian.

Quotes, QE reports and PCS collateral all sign this way; there is no DER and no hash choice to make.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attest.errors import SignatureError

__all__ = ["check_signature", "p256_key"]


def p256_key(raw: bytes, what: str) -> ec.EllipticCurvePublicKey:
    """The P-256 public key whose point is ``raw`` (x||y); SignatureError when it is not on the curve."""
    if len(raw) != 64:
        raise SignatureError(f"{what} is {len(raw)} bytes, not a 64-byte P-256 point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + raw)
    except ValueError:
        raise SignatureError(f"{what} is not a point on P-256") from None


def check_signature(key: CertificatePublicKeyTypes, signature: bytes, message: bytes, what: str) -> None:
    """SignatureError unless ``signature`` (r||s) is ``key``'s ECDSA P-256 SHA-256 signature of ``message``."""
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise SignatureError(f"{what}: the signing key is not an ECDSA P-256 key")
    if len(signature) != 64:
        raise SignatureError(f"{what}: the signature is {len(signature)} bytes, not 64 (r||s)")
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    try:
        key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SignatureError(f"{what} does not verify") from None
