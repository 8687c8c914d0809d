from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attest.bundle import CertificateSigner, KeySigner, verify_bundle
from attest.bundle_format import MAX_BUNDLE_BYTES
from attest.dsse import IN_TOTO_PAYLOAD_TYPE
from attest.errors import (
    AttestError,
    BundleFormatError,
    CertificateError,
    IdentityError,
    SignatureError,
    VerificationError,
)
from attest.keys import PrivateKey, generate_private_key, key_id, load_private_key, load_public_key
from attest.trust import RootAnchor, TrustAnchors, load_certificates
from tests.attest.vectors import model_bundle, vector_key
from tests.certgen import NOW, flip_last_byte, key_usage, make_cert, make_pki, new_key

PAYLOAD = json.dumps({"_type": "https://in-toto.io/Statement/v1", "subject": []}).encode()
IN_2030 = datetime.fromisoformat("2030-01-01T00:00:00+00:00")


def _bytes(bundle: dict[str, Any]) -> bytes:
    return json.dumps(bundle).encode()


def _signed(key: PrivateKey | None = None) -> tuple[dict[str, Any], TrustAnchors]:
    key = key or generate_private_key("ecdsa-p256")
    return KeySigner(key).sign(IN_TOTO_PAYLOAD_TYPE, PAYLOAD), TrustAnchors(keys=(key.public_key(),))


@pytest.mark.parametrize("kind", ["ecdsa-p256", "ecdsa-p384", "ed25519"])
def test_key_round_trip(kind: str) -> None:
    key = generate_private_key(kind)  # type: ignore[arg-type]
    bundle, anchors = _signed(key)
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["verificationMaterial"] == {"publicKey": {"hint": key_id(key.public_key())}, "tlogEntries": []}
    verified = verify_bundle(_bytes(bundle), anchors, at=NOW)
    assert (verified.payload_type, verified.payload) == (IN_TOTO_PAYLOAD_TYPE, PAYLOAD)
    signer = verified.signer
    assert (signer.kind, signer.key_id) == ("key", key_id(key.public_key()))
    assert (signer.time, signer.time_source) == (NOW, "given")
    assert signer.to_json() == {
        "kind": "key", "key_id": key_id(key.public_key()), "identity": [], "issuer": None, "chain": [],
        "time": NOW.isoformat(), "time_source": "given",
    }


def test_clock_time_is_read_once_and_reported() -> None:
    bundle, anchors = _signed()
    before = datetime.now(NOW.tzinfo)
    signer = verify_bundle(_bytes(bundle), anchors).signer
    assert signer.time_source == "clock" and before <= signer.time <= datetime.now(NOW.tzinfo)


def test_the_right_key_is_found_among_several_without_a_hint() -> None:
    key = generate_private_key("ed25519")
    bundle, _ = _signed(key)
    del bundle["verificationMaterial"]["publicKey"]["hint"]
    others = tuple(generate_private_key("ecdsa-p256").public_key() for _ in range(3))
    anchors = TrustAnchors(keys=(*others, key.public_key()))
    assert verify_bundle(_bytes(bundle), anchors).signer.key_id == key_id(key.public_key())
    with pytest.raises(SignatureError, match="does not verify with any of the 3 trusted keys"):
        verify_bundle(_bytes(bundle), TrustAnchors(keys=others))
    with pytest.raises(SignatureError, match=f"does not verify with key {key_id(others[0])}"):
        verify_bundle(_bytes(bundle), TrustAnchors(keys=others[:1]))


def test_untrusted_hint() -> None:
    bundle, _ = _signed()
    hint = bundle["verificationMaterial"]["publicKey"]["hint"]
    with pytest.raises(IdentityError, match=f"signed by key {hint}, which is not trusted"):
        verify_bundle(_bytes(bundle), TrustAnchors(keys=(generate_private_key("ecdsa-p256").public_key(),)))


def test_a_lying_hint_does_not_help() -> None:
    bundle, _ = _signed()  # signed by some key, but hinted as the trusted one
    trusted = generate_private_key("ecdsa-p256").public_key()
    bundle["verificationMaterial"]["publicKey"]["hint"] = key_id(trusted)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_bundle(_bytes(bundle), TrustAnchors(keys=(trusted,)))


def _flip_b64(value: str, index: int = -1) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("field", ["payload", "sig", "payloadType"])
def test_tampered_envelope(field: str) -> None:
    bundle, anchors = _signed()
    envelope = bundle["dsseEnvelope"]
    if field == "payload":
        envelope["payload"] = _flip_b64(envelope["payload"], 10)
    elif field == "sig":
        envelope["signatures"][0]["sig"] = _flip_b64(envelope["signatures"][0]["sig"])
    else:
        envelope["payloadType"] = "application/json"
    with pytest.raises(SignatureError, match="does not verify"):
        verify_bundle(_bytes(bundle), anchors)


def test_certificate_round_trip() -> None:
    pki = make_pki()
    bundle = CertificateSigner(pki.leaf_key, pki.chain).sign(IN_TOTO_PAYLOAD_TYPE, PAYLOAD)
    raw = bundle["verificationMaterial"]["x509CertificateChain"]["certificates"]
    assert [base64.b64decode(c["rawBytes"]) for c in raw] == [c.public_bytes(Encoding.DER) for c in pki.chain]
    verified = verify_bundle(_bytes(bundle), TrustAnchors(roots=(RootAnchor(pki.root),)), at=NOW)
    assert verified.payload == PAYLOAD
    signer = verified.signer
    assert signer.kind == "certificate"
    assert signer.identity == ("release@example.com", "https://ci.example.com/release", "release-signer")
    assert signer.issuer == "CN=Test Intermediate"
    assert signer.chain == ("CN=release-signer", "CN=Test Intermediate", "CN=Test Root")
    assert signer.key_id == key_id(pki.leaf_key.public_key())


def test_root_identities() -> None:
    pki = make_pki()
    data = _bytes(CertificateSigner(pki.leaf_key, pki.chain).sign(IN_TOTO_PAYLOAD_TYPE, PAYLOAD))
    verify_bundle(data, TrustAnchors(roots=(RootAnchor(pki.root, ("release@example.com",)),)))
    with pytest.raises(IdentityError, match="none of which is allowed .allowed: other@example.com"):
        verify_bundle(data, TrustAnchors(roots=(RootAnchor(pki.root, ("other@example.com",)),)))
    # The same root listed again without identities (e.g. on the command line) vouches for anyone.
    both = (RootAnchor(pki.root, ("other@example.com",)), RootAnchor(pki.root))
    verify_bundle(data, TrustAnchors(roots=both))


def test_certificate_bundle_failures() -> None:
    pki, other = make_pki(), make_pki()
    bundle = CertificateSigner(pki.leaf_key, pki.chain).sign(IN_TOTO_PAYLOAD_TYPE, PAYLOAD)
    anchors = TrustAnchors(roots=(RootAnchor(pki.root),))
    with pytest.raises(CertificateError, match="'CN=release-signer' expired at"):
        verify_bundle(_bytes(bundle), anchors, at=NOW + timedelta(days=60))
    with pytest.raises(CertificateError, match="'CN=release-signer' is not valid until"):
        verify_bundle(_bytes(bundle), anchors, at=NOW - timedelta(days=2))
    with pytest.raises(CertificateError, match="did not sign 'CN=Test Intermediate'"):
        verify_bundle(_bytes(bundle), TrustAnchors(roots=(RootAnchor(other.root),)))
    certificates = bundle["verificationMaterial"]["x509CertificateChain"]["certificates"]
    certificates.append({"rawBytes": base64.b64encode(pki.root.public_bytes(Encoding.DER)).decode()})
    with pytest.raises(CertificateError, match="'CN=Test Root' is self-signed but is not a configured root"):
        verify_bundle(_bytes(bundle), TrustAnchors(roots=(RootAnchor(make_cert("Other", new_key(), ca=True)),)))


@pytest.mark.parametrize("index", [0, 1])
def test_flipped_bit_in_a_bundled_certificate(index: int) -> None:
    pki = make_pki()
    bundle = CertificateSigner(pki.leaf_key, pki.chain).sign(IN_TOTO_PAYLOAD_TYPE, PAYLOAD)
    entry = bundle["verificationMaterial"]["x509CertificateChain"]["certificates"][index]
    entry["rawBytes"] = base64.b64encode(flip_last_byte(base64.b64decode(entry["rawBytes"]))).decode()
    with pytest.raises(CertificateError, match="the signature does not verify"):
        verify_bundle(_bytes(bundle), TrustAnchors(roots=(RootAnchor(pki.root),)))


def test_a_bundled_certificate_of_an_unknown_version_is_a_format_error() -> None:
    """cryptography's InvalidVersion is no ValueError (found by the mutation test below: version byte 63)."""
    pki = make_pki()
    bundle = CertificateSigner(pki.leaf_key, pki.chain).sign(IN_TOTO_PAYLOAD_TYPE, PAYLOAD)
    entry = bundle["verificationMaterial"]["x509CertificateChain"]["certificates"][0]
    der = base64.b64decode(entry["rawBytes"])
    v3 = bytes.fromhex("a003020102")  # tbsCertificate's [0] EXPLICIT version, v3
    assert v3 in der
    entry["rawBytes"] = base64.b64encode(der.replace(v3, bytes.fromhex("a00302013f"), 1)).decode()
    with pytest.raises(BundleFormatError, match=r"certificates\[0\] is not a DER X.509 certificate"):
        verify_bundle(_bytes(bundle), TrustAnchors(roots=(RootAnchor(pki.root),)))


def test_tampered_payload_under_a_certificate() -> None:
    pki = make_pki()
    bundle = CertificateSigner(pki.leaf_key, pki.chain).sign(IN_TOTO_PAYLOAD_TYPE, PAYLOAD)
    bundle["dsseEnvelope"]["payload"] = _flip_b64(bundle["dsseEnvelope"]["payload"], 3)
    with pytest.raises(SignatureError, match="does not verify with key"):
        verify_bundle(_bytes(bundle), TrustAnchors(roots=(RootAnchor(pki.root),)))


def test_leaf_without_signing_usage_in_a_bundle() -> None:
    pki = make_pki()
    leaf = make_cert("no-sign", pki.leaf_key, (pki.intermediate, pki.intermediate_key), ca=False,
                     usage=key_usage("key_encipherment"))
    signer = CertificateSigner(pki.leaf_key, [pki.leaf, pki.intermediate])
    bundle = signer.sign(IN_TOTO_PAYLOAD_TYPE, PAYLOAD)
    bundle["verificationMaterial"]["x509CertificateChain"]["certificates"][0]["rawBytes"] = base64.b64encode(
        leaf.public_bytes(Encoding.DER)
    ).decode()
    with pytest.raises(CertificateError, match="'CN=no-sign' may not sign"):
        verify_bundle(_bytes(bundle), TrustAnchors(roots=(RootAnchor(pki.root),)))


def test_certificate_signer_checks_its_inputs() -> None:
    pki = make_pki()
    with pytest.raises(AttestError, match="not for this private key"):
        CertificateSigner(new_key(), pki.chain)
    with pytest.raises(AttestError, match="needs the signing certificate"):
        CertificateSigner(pki.leaf_key, [])
    no_sign = make_cert("enc", pki.leaf_key, ca=False, usage=key_usage("key_encipherment"))
    with pytest.raises(AttestError, match="cannot sign with this certificate: .*may not sign"):
        CertificateSigner(pki.leaf_key, [no_sign])
    expired = make_cert("old", pki.leaf_key, ca=False, usage=key_usage("digital_signature"),
                        not_before=NOW - timedelta(days=9), not_after=NOW - timedelta(days=2))
    with pytest.raises(AttestError, match="'CN=old' expired at"):
        CertificateSigner(pki.leaf_key, [expired])
    with pytest.raises(AttestError, match="curve secp256k1 are not supported"):
        KeySigner(ec.generate_private_key(ec.SECP256K1()))  # type: ignore[arg-type]


def test_anchors_of_another_kind_do_not_count() -> None:
    bundle, _ = _signed()
    pki = make_pki()
    with pytest.raises(IdentityError, match="signed with a key, but no trusted keys are configured"):
        verify_bundle(_bytes(bundle), TrustAnchors(roots=(RootAnchor(pki.root),)))
    data = _bytes(CertificateSigner(pki.leaf_key, pki.chain).sign(IN_TOTO_PAYLOAD_TYPE, PAYLOAD))
    with pytest.raises(IdentityError, match="signed with a certificate, but no certificate roots are configured"):
        verify_bundle(data, TrustAnchors(keys=(pki.leaf_key.public_key(),)))


def test_empty_trust_fails_closed() -> None:
    bundle, _ = _signed()
    for data in (_bytes(bundle), b"not even json"):
        with pytest.raises(IdentityError, match="no trusted keys, certificate roots or keyless identities"):
            verify_bundle(data, TrustAnchors())


def test_naive_time_is_refused() -> None:
    bundle, anchors = _signed()
    with pytest.raises(AttestError, match="timezone-aware"):
        verify_bundle(_bytes(bundle), anchors, at=NOW.replace(tzinfo=None))


def _edit(bundle: dict[str, Any], path: str, value: object) -> bytes:
    *parents, last = path.split(".")
    target = bundle
    for name in parents:
        target = target[name]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return _bytes(bundle)


_DELETE = object()
_CERT = {"rawBytes": base64.b64encode(make_pki().leaf.public_bytes(Encoding.DER)).decode()}


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: _bytes(b)[:-7], "not valid JSON"),
        (lambda b: b"\xff" + _bytes(b), "not UTF-8"),
        (lambda b: b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (lambda b: b'{"mediaType": 1, "mediaType": 2}', "duplicate JSON key 'mediaType'"),
        (lambda b: b'{"x": NaN}', "JSON value NaN is not allowed"),
        (lambda b: b" " * (MAX_BUNDLE_BYTES + 1), "larger than"),
        (lambda b: b"[]", "bundle must be a JSON object"),
        (lambda b: _edit(b, "mediaType", "application/json"), "mediaType 'application/json' is not a Sigstore bundle"),
        (lambda b: _edit(b, "extra", 1), "unknown fields: extra"),
        (lambda b: _edit(b, "dsseEnvelope", _DELETE), "holds no DSSE envelope"),
        (lambda b: _edit(b, "messageSignature", {}), "both a DSSE envelope and a message signature"),
        (lambda b: _edit(b, "verificationMaterial.x509CertificateChain", {"certificates": [_CERT]}),
         "exactly one of publicKey, x509CertificateChain, certificate; it holds .'publicKey', 'x509CertificateChain'"),
        (lambda b: _edit(b, "verificationMaterial.publicKey", _DELETE), "it holds none"),
        (lambda b: _edit(b, "verificationMaterial.tlogEntries", [{}]), "key-signed bundles with log entries"),
        (lambda b: _edit(b, "verificationMaterial.tlogEntries", {}), "tlogEntries must be a list"),
        (lambda b: _edit(b, "verificationMaterial.publicKey.hint", 5), "hint must be a non-empty string"),
        (lambda b: _edit(b, "verificationMaterial.publicKey.rawBytes", "AA=="), "unknown fields: rawBytes"),
        (lambda b: _edit(b, "dsseEnvelope.signatures", []), "exactly one is supported"),
    ],
)
def test_malformed_bundles(mutate: Any, reason: str) -> None:
    bundle, anchors = _signed()
    with pytest.raises(BundleFormatError, match=reason):
        verify_bundle(mutate(bundle), anchors)


@pytest.mark.parametrize(
    ("material", "reason"),
    [
        ({"certificate": _CERT, "tlogEntries": []}, "single-certificate .keyless. bundle needs a transparency-log"),
        ({"x509CertificateChain": {"certificates": []}}, "certificates must be a non-empty list"),
        ({"x509CertificateChain": {"certificates": [_CERT] * 11}}, "holds 11 certificates"),
        ({"x509CertificateChain": {"certificates": [{"rawBytes": "AAAA"}]}}, "not a DER X.509 certificate"),
        ({"certificate": _CERT, "tlogEntries": [{}, {}]}, "exactly one transparency-log entry, not 2"),
        ({"certificate": _CERT, "tlogEntries": [], "timestampVerificationData": {"rfc3161Timestamps": [{}]}},
         "exactly one transparency-log entry, not 0"),
        ({"certificate": _CERT,
          "tlogEntries": [{"integratedTime": "-1", "inclusionPromise": {"signedEntryTimestamp": "AA=="}}]},
         "integratedTime is not a valid time"),
    ],
)
def test_malformed_certificate_material(material: dict[str, Any], reason: str) -> None:
    bundle, anchors = _signed()
    bundle["verificationMaterial"] = material
    with pytest.raises(BundleFormatError, match=reason):
        verify_bundle(_bytes(bundle), TrustAnchors(keys=anchors.keys, roots=(RootAnchor(make_pki().root),)))


def test_older_bundle_media_types_are_read() -> None:
    bundle, anchors = _signed()
    bundle["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2"
    assert verify_bundle(_bytes(bundle), anchors).payload == PAYLOAD


_KEY = generate_private_key("ecdsa-p256")
_PKI = make_pki()
_KEY_BUNDLE = json.dumps(KeySigner(_KEY).sign(IN_TOTO_PAYLOAD_TYPE, PAYLOAD), indent=1).encode()
_CERT_BUNDLE = json.dumps(CertificateSigner(_PKI.leaf_key, _PKI.chain).sign(IN_TOTO_PAYLOAD_TYPE, PAYLOAD)).encode()
_ANCHORS = TrustAnchors(keys=(_KEY.public_key(),), roots=(RootAnchor(_PKI.root),))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.sampled_from([_KEY_BUNDLE, _CERT_BUNDLE]),
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255), st.sampled_from(["set", "del", "ins"])),
                   min_size=1, max_size=4),
)
def test_mutated_bundles_fail_with_typed_errors(which: bytes, edits: list[tuple[int, int, str]]) -> None:
    data = bytearray(which)
    for position, byte, op in edits:
        i = position % (len(data) + 1) if op == "ins" else position % len(data)
        if op == "set":
            data[i] = byte
        elif op == "del" and len(data) > 1:
            del data[i]
        else:
            data.insert(i, byte)
    try:
        verified = verify_bundle(bytes(data), _ANCHORS, at=NOW)
    except VerificationError:
        return
    # Whatever still verifies (a JSON space changed, an older media type) must carry the signed payload.
    assert (verified.payload_type, verified.payload) == (IN_TOTO_PAYLOAD_TYPE, PAYLOAD)


def test_vector_elliptic_key() -> None:
    data = model_bundle("v1.1.0-elliptic-key")
    public = load_public_key(vector_key("signing-key-pub.pem"))
    verified = verify_bundle(data, TrustAnchors(keys=(public,)))
    assert verified.signer.key_id == key_id(public)
    assert json.loads(verified.payload)["predicateType"] == "https://model_signing/signature/v1.0"
    with pytest.raises(IdentityError, match="signed by key e8450dec4eb9.*which is not trusted"):
        verify_bundle(data, TrustAnchors(keys=(generate_private_key("ecdsa-p384").public_key(),)))


def test_vector_certificate() -> None:
    data = model_bundle("v1.1.0-certificate")
    roots = tuple(RootAnchor(c) for c in load_certificates(vector_key("ca-cert.pem")))
    signer = verify_bundle(data, TrustAnchors(roots=roots), at=IN_2030).signer
    assert signer.chain == ("CN=intermediate-ca", "CN=intermediate-ca", "CN=root-ca")
    assert signer.identity == ("intermediate-ca",)
    with pytest.raises(CertificateError, match="expired at 2035-04-30"):
        verify_bundle(data, TrustAnchors(roots=roots), at=datetime.fromisoformat("2036-01-01T00:00:00+00:00"))
    with pytest.raises(CertificateError, match="which is neither a configured root nor in the bundle"):
        verify_bundle(data, TrustAnchors(roots=(RootAnchor(make_pki().root),)), at=IN_2030)
    (intermediate,) = load_certificates(vector_key("int-ca-cert.pem"))
    verify_bundle(data, TrustAnchors(roots=(RootAnchor(intermediate),)), at=IN_2030)  # a CA one chooses to trust


def test_certificate_signer_with_the_vector_hierarchy() -> None:
    key = load_private_key(vector_key("signing-key.pem"))
    chain = [*load_certificates(vector_key("signing-key-cert.pem")), *load_certificates(vector_key("int-ca-cert.pem"))]
    data = _bytes(CertificateSigner(key, chain).sign(IN_TOTO_PAYLOAD_TYPE, PAYLOAD))
    roots = tuple(RootAnchor(c) for c in load_certificates(vector_key("ca-cert.pem")))
    assert verify_bundle(data, TrustAnchors(roots=roots), at=IN_2030).payload == PAYLOAD
