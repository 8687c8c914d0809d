from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from attest.certs import (
    MAX_PATH_LENGTH,
    certificate_identities,
    check_identity,
    check_signing_usage,
    verify_chain,
)
from attest.errors import AttestError, CertificateError, IdentityError
from attest.trust import load_certificates
from tests.attest.vectors import vector_key
from tests.certgen import NOW, flip_last_byte, key_usage, make_cert, make_pki, new_key

UTC_2030 = datetime.fromisoformat("2030-01-01T00:00:00+00:00")

# An extension no verifier understands: a private OID.
_ODD = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")


def test_three_level_path() -> None:
    pki = make_pki()
    assert verify_chain(pki.leaf, [pki.intermediate], [pki.root], NOW) == (pki.leaf, pki.intermediate, pki.root)


def test_intermediates_may_come_in_any_order_and_with_extras() -> None:
    pki, other = make_pki(), make_pki()
    path = verify_chain(pki.leaf, [other.intermediate, other.root, pki.intermediate], [other.root, pki.root], NOW)
    assert path == (pki.leaf, pki.intermediate, pki.root)


def test_the_vector_chain_shape() -> None:
    # The model-signing test chain: RSA root and intermediate, a P-384 leaf with CA:TRUE that is named like
    # its issuer. It must verify, but only inside the validity window and only under its own root.
    (leaf,) = load_certificates(vector_key("signing-key-cert.pem"))
    (intermediate,) = load_certificates(vector_key("int-ca-cert.pem"))
    (root,) = load_certificates(vector_key("ca-cert.pem"))
    assert verify_chain(leaf, [intermediate], [root], UTC_2030) == (leaf, intermediate, root)
    with pytest.raises(CertificateError, match=r"'CN=intermediate-ca' expired at 2035-04-30T23:36:28\+00:00"):
        verify_chain(leaf, [intermediate], [root], datetime.fromisoformat("2036-01-01T00:00:00+00:00"))
    with pytest.raises(CertificateError, match=r"is not valid until 2025-05-02T23:36:28\+00:00"):
        verify_chain(leaf, [intermediate], [root], datetime.fromisoformat("2025-01-01T00:00:00+00:00"))
    with pytest.raises(CertificateError, match="'CN=intermediate-ca' was issued by 'CN=root-ca', which is neither"):
        verify_chain(leaf, [intermediate], [make_pki().root], UTC_2030)
    with pytest.raises(CertificateError, match="by 'CN=intermediate-ca', which is neither a configured root nor in"):
        verify_chain(leaf, [], [root], UTC_2030)


def test_expired_and_not_yet_valid_intermediate() -> None:
    pki = make_pki()
    later = NOW + timedelta(days=31)
    with pytest.raises(CertificateError, match="certificate 'CN=release-signer' expired at"):
        verify_chain(pki.leaf, [pki.intermediate], [pki.root], later)
    early_leaf = make_cert(
        "early", new_key(), (pki.intermediate, pki.intermediate_key), ca=False,
        usage=key_usage("digital_signature"), not_before=NOW - timedelta(days=3),
    )
    with pytest.raises(CertificateError, match="'CN=Test Intermediate' is not valid until"):
        verify_chain(early_leaf, [pki.intermediate], [pki.root], NOW - timedelta(days=2))


def test_a_renewed_intermediate_is_found_after_an_expired_one() -> None:
    pki = make_pki()
    expired = make_cert(
        "Test Intermediate", pki.intermediate_key, (pki.root, pki.root_key), ca=True,
        not_before=NOW - timedelta(days=10), not_after=NOW - timedelta(days=5),
    )
    assert verify_chain(pki.leaf, [expired, pki.intermediate], [pki.root], NOW)[1] == pki.intermediate
    with pytest.raises(CertificateError, match="'CN=Test Intermediate' expired at"):
        verify_chain(pki.leaf, [expired], [pki.root], NOW)


def test_untrusted_self_signed_root_in_the_bundle() -> None:
    pki, trusted = make_pki(), make_pki()
    with pytest.raises(CertificateError, match="'CN=Test Root' is self-signed but is not a configured root"):
        verify_chain(pki.leaf, [pki.intermediate, pki.root], [trusted.root], NOW)


def test_same_name_different_key_root_is_not_trusted() -> None:
    pki, impostor = make_pki(), make_pki()  # both roots are named CN=Test Root
    with pytest.raises(CertificateError, match="'CN=Test Root' did not sign 'CN=Test Intermediate'"):
        verify_chain(pki.leaf, [pki.intermediate], [impostor.root], NOW)


@pytest.mark.parametrize("which", ["leaf", "intermediate"])
def test_flipped_bit_in_a_certificate(which: str) -> None:
    pki = make_pki()
    leaf, intermediate = pki.leaf, pki.intermediate
    if which == "leaf":
        leaf = x509.load_der_x509_certificate(flip_last_byte(leaf.public_bytes(Encoding.DER)))
    else:
        intermediate = x509.load_der_x509_certificate(flip_last_byte(intermediate.public_bytes(Encoding.DER)))
    with pytest.raises(CertificateError, match="did not sign .*the signature does not verify"):
        verify_chain(leaf, [intermediate], [pki.root], NOW)


def test_issuer_must_be_a_ca_allowed_to_sign_certificates() -> None:
    root_key, int_key = new_key(), new_key()
    root = make_cert("Root", root_key, ca=True)
    not_ca = make_cert("Not CA", int_key, (root, root_key), ca=False)
    leaf = make_cert("leaf", new_key(), (not_ca, int_key), ca=False, usage=key_usage("digital_signature"))
    with pytest.raises(CertificateError, match="'CN=Not CA' issued 'CN=leaf' but is not a CA"):
        verify_chain(leaf, [not_ca], [root], NOW)
    no_cert_sign = make_cert("No certSign", int_key, (root, root_key), ca=True, usage=key_usage("digital_signature"))
    leaf = make_cert("leaf", new_key(), (no_cert_sign, int_key), ca=False, usage=key_usage("digital_signature"))
    with pytest.raises(CertificateError, match="its keyUsage lacks keyCertSign"):
        verify_chain(leaf, [no_cert_sign], [root], NOW)


def test_path_length_constraint() -> None:
    root_key, int_key, sub_key = new_key(), new_key(), new_key()
    root = make_cert("Root", root_key, ca=True, path_length=0)
    intermediate = make_cert("Int", int_key, (root, root_key), ca=True)
    leaf = make_cert("leaf", new_key(), (intermediate, int_key), ca=False, usage=key_usage("digital_signature"))
    with pytest.raises(CertificateError, match="'CN=Root' allows 0 intermediate CAs below it, the path has 1"):
        verify_chain(leaf, [intermediate], [root], NOW)
    root = make_cert("Root", root_key, ca=True, path_length=1)
    intermediate = make_cert("Int", int_key, (root, root_key), ca=True, path_length=0)
    sub = make_cert("Sub", sub_key, (intermediate, int_key), ca=True)
    leaf = make_cert("leaf", new_key(), (sub, sub_key), ca=False, usage=key_usage("digital_signature"))
    with pytest.raises(CertificateError, match="'CN=Int' allows 0 intermediate CAs below it, the path has 1"):
        verify_chain(leaf, [sub, intermediate], [root], NOW)


def test_paths_are_bounded() -> None:
    keys = [new_key() for _ in range(MAX_PATH_LENGTH + 1)]
    certs = [make_cert("CA 0", keys[0], ca=True)]
    for i in range(1, MAX_PATH_LENGTH):
        certs.append(make_cert(f"CA {i}", keys[i], (certs[-1], keys[i - 1]), ca=True))
    leaf = make_cert("leaf", keys[-1], (certs[-1], keys[-2]), ca=False, usage=key_usage("digital_signature"))
    with pytest.raises(CertificateError, match="longer than 8 certificates"):
        verify_chain(leaf, certs[1:][::-1], [certs[0]], NOW)
    with pytest.raises(CertificateError, match="too many"):
        verify_chain(leaf, certs[1:][::-1] + [certs[1]], [certs[0]], NOW)


def test_issuer_loops_terminate() -> None:
    root_key, a_key, b_key = new_key(), new_key(), new_key()
    root = make_cert("Root", root_key, ca=True)
    a = make_cert("A", a_key, (make_cert("B", b_key, ca=True), b_key), ca=True)
    b = make_cert("B", b_key, (a, a_key), ca=True)
    leaf = make_cert("leaf", new_key(), (a, a_key), ca=False, usage=key_usage("digital_signature"))
    with pytest.raises(CertificateError, match="'CN=B' was issued by 'CN=A', which is neither a configured root"):
        verify_chain(leaf, [a, b], [root], NOW)


@pytest.mark.parametrize("where", ["leaf", "intermediate"])
def test_unknown_critical_extensions_are_refused(where: str) -> None:
    pki = make_pki()
    if where == "leaf":
        leaf = make_cert(
            "leaf", new_key(), (pki.intermediate, pki.intermediate_key), ca=False,
            usage=key_usage("digital_signature"), extra=[(_ODD, True)],
        )
        intermediate = pki.intermediate
    else:
        intermediate = make_cert(
            "Test Intermediate", pki.intermediate_key, (pki.root, pki.root_key), ca=True, extra=[(_ODD, True)]
        )
        leaf = pki.leaf
    with pytest.raises(CertificateError, match=r"unsupported critical extensions: \['1.3.6.1.4.1.55555.1'\]"):
        verify_chain(leaf, [intermediate], [pki.root], NOW)


def test_unknown_non_critical_extensions_are_fine() -> None:
    pki = make_pki(extra=[(_ODD, False)])
    verify_chain(pki.leaf, [pki.intermediate], [pki.root], NOW)


def test_leaf_signing_usage() -> None:
    with pytest.raises(CertificateError, match="may not sign: it has neither keyUsage digitalSignature"):
        pki = make_pki(leaf_usage=key_usage("key_encipherment"), leaf_eku=[ExtendedKeyUsageOID.SERVER_AUTH])
        verify_chain(pki.leaf, [pki.intermediate], [pki.root], NOW)
    # Either keyUsage digitalSignature or extendedKeyUsage codeSigning suffices, as in model-signing.
    only_eku = make_cert("eku", new_key(), ca=False, eku=[ExtendedKeyUsageOID.CODE_SIGNING])
    check_signing_usage(only_eku)
    only_ku = make_cert("ku", new_key(), ca=False, usage=key_usage("digital_signature"))
    check_signing_usage(only_ku)
    tls = make_cert(
        "tls", new_key(), ca=False, usage=key_usage("key_encipherment"), eku=[ExtendedKeyUsageOID.SERVER_AUTH]
    )
    with pytest.raises(CertificateError, match="may not sign"):
        check_signing_usage(tls)
    with pytest.raises(CertificateError, match="may not sign"):
        check_signing_usage(make_cert("bare", new_key(), ca=False))


def test_a_ca_leaf_is_accepted() -> None:
    pki = make_pki(leaf_ca=True)
    verify_chain(pki.leaf, [pki.intermediate], [pki.root], NOW)


def test_refusals_before_any_search() -> None:
    pki = make_pki()
    with pytest.raises(CertificateError, match="no certificate roots are configured"):
        verify_chain(pki.leaf, [pki.intermediate], [], NOW)
    with pytest.raises(CertificateError, match="is a trusted root itself"):
        verify_chain(pki.root, [], [pki.root], NOW)
    with pytest.raises(AttestError, match="timezone-aware"):
        verify_chain(pki.leaf, [pki.intermediate], [pki.root], NOW.replace(tzinfo=None))


def test_identities_and_their_check() -> None:
    cert = make_cert(
        "CN Name", new_key(), ca=False,
        san=[x509.DNSName("signer.example.com"), x509.UniformResourceIdentifier("https://ci/x"),
             x509.RFC822Name("a@example.com")],
    )
    assert certificate_identities(cert) == ("a@example.com", "https://ci/x", "signer.example.com", "CN Name")
    assert certificate_identities(make_cert("only-cn", new_key(), ca=False)) == ("only-cn",)
    check_identity(cert, ["nobody", "CN Name"])
    with pytest.raises(IdentityError, match="none of which is allowed .allowed: b@example.com"):
        check_identity(cert, ["b@example.com"])
    with pytest.raises(IdentityError, match="no identities are allowed"):
        check_identity(cert, [])


def test_a_broken_intermediate_tried_first_does_not_hide_the_good_path() -> None:
    """Two intermediates of the same name: the first one's issuer link fails; the root is still reached."""
    root_key, good_key, bad_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(4))
    root = make_cert("Root", root_key, ca=True, usage=key_usage("key_cert_sign"))
    good = make_cert("Intermediate", good_key, (root, root_key), ca=True, usage=key_usage("key_cert_sign"))
    stranger = make_cert("Root", bad_key, ca=True, usage=key_usage("key_cert_sign"))  # not the configured root
    bad = make_cert("Intermediate", good_key, (stranger, bad_key), ca=True, usage=key_usage("key_cert_sign"))
    leaf = make_cert("Leaf", leaf_key, (good, good_key), ca=False, usage=key_usage("digital_signature"))
    path = verify_chain(leaf, [bad, good], [root], NOW)
    assert path == (leaf, good, root)
