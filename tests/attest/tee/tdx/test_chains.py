"""The chain and CRL checks with certificates of our own, for what Intel's vectors cannot show (a revocation)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from attest.errors import CertificateError, SignatureError
from attest.tee.tdx.chains import (
    chain_path,
    check_crl_dates,
    check_crl_issuer,
    check_dates,
    check_not_revoked,
    check_subject,
)
from attest.tee.tdx.pem import pem_chain
from tests.attest.tee.tdx.vectors import at, pcs
from tests.certgen import key_usage, make_cert, new_key

T0 = at("2024-01-01")


def _ca(
    name: str = "Test PCK CA", usage: x509.KeyUsage | None = None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = new_key()
    usage = usage or key_usage("key_cert_sign", "crl_sign")
    return make_cert(name, key, ca=True, usage=usage, not_before=T0, not_after=T0 + timedelta(days=3650)), key


def _leaf(issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], days: int = 365) -> x509.Certificate:
    return make_cert(
        "leaf",
        new_key(),
        issuer,
        ca=False,
        usage=key_usage("digital_signature"),
        not_before=T0,
        not_after=T0 + timedelta(days=days),
    )


def _crl(
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    revoked: tuple[int, ...] = (),
    name: x509.Name | None = None,
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(name or issuer[0].subject)
        .last_update(T0)
        .next_update(T0 + timedelta(days=30))
    )
    for serial in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(T0 + timedelta(days=1)).build()
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(issuer[1], hashes.SHA256())


def test_a_revoked_certificate_is_named_with_its_date() -> None:
    ca = _ca()
    leaf, other = _leaf(ca), _leaf(ca)
    crl = _crl(ca, (leaf.serial_number,))
    check_crl_issuer(crl, ca[0], "the PCK CRL")
    check_not_revoked(crl, other, "the PCK CRL")
    with pytest.raises(
        CertificateError,
        match=rf"'CN=leaf' \(serial {leaf.serial_number:x}\) is revoked by the PCK "
        r"CRL since 2024-01-02T00:00:00\+00:00",
    ):
        check_not_revoked(crl, leaf, "the PCK CRL")


def test_a_crl_must_be_signed_by_its_issuer() -> None:
    ca, impostor = _ca(), _ca()  # the same name, another key
    with pytest.raises(
        SignatureError, match="the PCK CRL's signature does not verify with the key of 'CN=Test PCK CA'"
    ):
        check_crl_issuer(_crl(impostor), ca[0], "the PCK CRL")
    no_crl_sign = _ca(usage=key_usage("key_cert_sign"))
    with pytest.raises(CertificateError, match="'CN=Test PCK CA' may not sign CRLs"):
        check_crl_issuer(_crl(no_crl_sign), no_crl_sign[0], "the PCK CRL")


def test_crl_dates() -> None:
    crl = _crl(_ca())
    check_crl_dates(crl, T0 + timedelta(days=30), "the PCK CRL")
    with pytest.raises(CertificateError, match=r"the PCK CRL is stale: its next update was due at 2024-01-31"):
        check_crl_dates(crl, T0 + timedelta(days=31), "the PCK CRL")
    with pytest.raises(CertificateError, match=r"the PCK CRL was issued at 2024-01-01T00:00:00\+00:00, after"):
        check_crl_dates(crl, T0 - timedelta(seconds=1), "the PCK CRL")


def test_authenticity_and_dates_are_judged_apart() -> None:
    ca = _ca()
    leaf = _leaf(ca, days=10)
    path = chain_path((leaf,), (ca[0],))
    assert path == (leaf, ca[0])
    check_dates(path, T0 + timedelta(days=10))
    with pytest.raises(CertificateError, match="certificate 'CN=leaf' expired at 2024-01-11"):
        check_dates(path, T0 + timedelta(days=11))
    with pytest.raises(CertificateError, match="'CN=leaf' was issued by 'CN=Test PCK CA', which is neither"):
        chain_path((leaf,), (_ca("Other Root")[0],))


def test_a_chain_that_is_never_valid_is_not_authentic() -> None:
    ca = _ca()
    early = make_cert(
        "early",
        new_key(),
        ca,
        ca=False,
        usage=key_usage("digital_signature"),
        not_before=T0 - timedelta(days=20),
        not_after=T0 - timedelta(days=10),
    )
    with pytest.raises(CertificateError, match="no time exists at which the chain is valid: 'CN=early' expired at"):
        chain_path((early,), (ca[0],))


def test_intels_roles_are_fixed_by_name() -> None:
    signing, root = pem_chain(pcs("tcbinfo_issuer_chain.pem"), "chain")
    check_subject(signing, ("Intel SGX TCB Signing",), "Intel's TCB signing certificate")
    with pytest.raises(CertificateError, match="CN=Intel SGX Root CA' is not an Intel PCK CA \\(its common name must"):
        check_subject(root, ("Intel SGX PCK Platform CA", "Intel SGX PCK Processor CA"), "an Intel PCK CA")
