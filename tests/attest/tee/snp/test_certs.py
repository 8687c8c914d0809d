from __future__ import annotations

import warnings
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attest.certs import verify_chain
from attest.errors import CertificateError, EvidenceFormatError
from attest.tee.snp.certs import (
    EndorsementKey,
    check_carried_roots,
    load_certificates,
    parse_endorsement_key,
    pinned_arks,
    pinned_intermediates,
    verify_endorsement_chain,
)
from tests.attest.tee.snp.vectors import forge_amd, milan, trustee, vector
from tests.certgen import make_cert, new_key

MILAN_VCEK_TCB = {"bootloader": 2, "tee": 0, "snp": 5, "microcode": 68} | {f"spl_{n}": 0 for n in (4, 5, 6, 7)}
LATER = datetime(2030, 1, 1, tzinfo=UTC)  # every product chain is valid then
COUNTING = bytes(range(64))  # the hwID the two invalid trustee VCEKs carry


def amd_extension(arc: str, value: bytes) -> tuple[x509.ExtensionType, bool]:
    return x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.3704.1." + arc), value), False


def test_serial_zero_parses_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (vcek,) = load_certificates(vector("go-sev-guest", "vcek.testcer"), "VCEK")
    assert vcek.serial_number == 0


def test_der_and_pem() -> None:
    ask, ark = load_certificates(vector("go-sev-guest", "milan.testcer"), "ASK")
    (again,) = load_certificates(ask.public_bytes(Encoding.DER), "ASK")
    assert again == ask and ark.subject == ark.issuer
    with pytest.raises(EvidenceFormatError, match="the VCEK certificate cannot be parsed"):
        load_certificates(vector("go-sev-guest", "vcek.testcer")[:-10], "VCEK")


def test_a_duplicate_extension_is_unparsable() -> None:
    one, two = amd_extension("3.1", b"\x02\x01\x01"), amd_extension("3.2", b"\x02\x01\x01")
    der = make_cert("SEV-VCEK", new_key(), ca=False, extra=[one, two]).public_bytes(Encoding.DER)
    oid_two = bytes.fromhex("060a2b060104019c78010302")  # 1.3.6.1.4.1.3704.1.3.2 -> 3.1
    assert der.count(oid_two) == 1
    with pytest.raises(EvidenceFormatError, match="the VCEK certificate cannot be parsed .*Duplicate"):
        load_certificates(der.replace(oid_two, oid_two[:-1] + b"\x01"), "VCEK")


def test_the_go_sev_guest_vcek() -> None:
    key = parse_endorsement_key(milan()[1]["vcek"])
    assert key.kind == "vcek" and key.product_name == "Milan-B0"
    assert dict(key.tcb) == MILAN_VCEK_TCB
    assert key.hw_id == milan()[0][0x1A0:0x1E0]


def test_both_hwid_encodings_parse() -> None:
    legacy = parse_endorsement_key(vector("trustee", "test-vcek-invalid-legacy.der"))
    new = parse_endorsement_key(vector("trustee", "test-vcek-invalid-new.der"))
    assert legacy.hw_id == new.hw_id == COUNTING
    assert legacy.tcb["microcode"] == 169 and new.tcb["microcode"] == 30  # 169 needs a two-byte INTEGER


@pytest.mark.parametrize("name", ["test-vcek-invalid-legacy.der", "test-vcek-invalid-new.der"])
def test_the_invalid_trustee_vceks_do_not_chain(name: str) -> None:
    key = parse_endorsement_key(vector("trustee", name))
    with pytest.raises(CertificateError, match="'CN=SEV-Milan,.*' did not sign 'CN=SEV-VCEK,.*': the signature does"):
        verify_endorsement_chain(key, [], None)


def test_the_real_vceks_chain_to_the_milan_ark() -> None:
    for key in (parse_endorsement_key(milan()[1]["vcek"]), parse_endorsement_key(trustee()[1]["vcek"])):
        path, product = verify_endorsement_chain(key, [], None)
        assert product == "Milan" and path[-1] == pinned_arks()["Milan"]
        assert [c.subject.rfc4514_string().split(",")[0] for c in path] == [
            "CN=SEV-VCEK",
            "CN=SEV-Milan",
            "CN=ARK-Milan",
        ]


def test_the_cpuid_product_restricts_the_root() -> None:
    key = parse_endorsement_key(milan()[1]["vcek"])
    with pytest.raises(CertificateError, match=r"'CN=SEV-Milan,.*' was issued by 'CN=ARK-Milan,.*', which is neither"):
        verify_endorsement_chain(key, [], "Genoa")


def test_a_vlek_must_chain_through_an_asvk() -> None:
    real = parse_endorsement_key(milan()[1]["vcek"])
    posing = EndorsementKey(real.cert, "vlek", real.product_name, real.tcb, real.hw_id)
    with pytest.raises(
        CertificateError, match=r"a VLEK must chain through an ASVK \(SEV-VLEK-Milan\), but the path is"
    ):
        verify_endorsement_chain(posing, [], None)


def test_only_vceks_and_vleks_are_endorsement_keys() -> None:
    ask = parse_endorsement_key(
        vector("go-sev-guest", "milan.testcer").split(b"-----END CERTIFICATE-----")[0]
        + (b"-----END CERTIFICATE-----\n")
    )
    assert ask.kind is None
    with pytest.raises(CertificateError, match="'CN=SEV-Milan,.*' is neither a VCEK nor a VLEK"):
        verify_endorsement_chain(ask, [], None)
    with pytest.raises(EvidenceFormatError, match="the VCEK/VLEK entry holds 2 certificates, expected one"):
        parse_endorsement_key(vector("go-sev-guest", "milan.testcer"))


@pytest.mark.parametrize(
    "chain",
    [
        ("go-sev-guest", "milan.testcer"),
        ("go-sev-guest", "milanvlek.testcer"),
        ("go-sev-guest", "ask_ark_genoa.pem"),
        ("go-sev-guest", "ask_ark_genoa_vlek.pem"),
        ("go-sev-guest", "ask_ark_turin_vcek.pem"),
        ("go-sev-guest", "ask_ark_turin_vlek.pem"),
        ("trustee", "milan_ask_ark_asvk.pem"),
        ("trustee", "genoa_ask_ark_asvk.pem"),
        ("trustee", "turin_ask_ark_asvk.pem"),
    ],
)
def test_the_product_chains_verify_to_the_pinned_roots(chain: tuple[str, str]) -> None:
    certs = load_certificates(vector(*chain), chain[1])
    arks = list(pinned_arks().values())
    (ark,) = [c for c in certs if c.subject == c.issuer]
    assert ark in arks  # the ARK the vector carries is byte-for-byte a pinned one
    check_carried_roots(certs)
    for signing_key in (c for c in certs if c != ark):
        assert signing_key in pinned_intermediates()
        assert verify_chain(signing_key, [], arks, LATER, require_signing_usage=False) == (signing_key, ark)
        others = [a for a in arks if a != ark]
        with pytest.raises(CertificateError, match="which is neither a configured root nor in the bundle"):
            verify_chain(signing_key, [], others, LATER, require_signing_usage=False)


def test_a_carried_root_must_be_pinned() -> None:
    ask, ark = load_certificates(vector("go-sev-guest", "milan.testcer"), "ASK")
    forged = forge_amd(ark, ask, parse_endorsement_key(milan()[1]["vcek"]).cert)
    with pytest.raises(CertificateError, match="carries a root 'CN=ARK-Milan,.*' that is not one of AMD's pinned ARKs"):
        check_carried_roots([ask, forged.ark])
    key = parse_endorsement_key(forged.leaf.public_bytes(Encoding.DER))
    with pytest.raises(CertificateError, match="'CN=ARK-Milan,.*' did not sign 'CN=SEV-Milan,.*'"):
        verify_endorsement_chain(key, [forged.ask, forged.ark], None)


@pytest.mark.parametrize(
    ("extension", "reason"),
    [
        (amd_extension("3.1", b"\x04\x01\x02"), r"extension 1.3.6.1.4.1.3704.1.3.1 is not a DER INTEGER from 0 to 255"),
        (amd_extension("3.3", b"\x02\x02\x01\x2c"), r"extension 1.3.6.1.4.1.3704.1.3.3 is 300, an SPL is at most 255"),
        (amd_extension("3.8", b"\x02\x02\x05"), "the DER length 2 does not match the 1 bytes given"),
        (amd_extension("3.8", b"\x02"), r"is truncated \(1 bytes\)"),
        (amd_extension("2", b"\x02\x01\x05"), r"productName is not a DER string \(tag 0x02\)"),
        (amd_extension("4", bytes(10)), "hwID is 10 bytes, neither a chip ID"),
    ],
)
def test_malformed_amd_extensions(extension: tuple[x509.ExtensionType, bool], reason: str) -> None:
    cert = make_cert("SEV-VCEK", new_key(), ca=False, extra=[extension])
    with pytest.raises(EvidenceFormatError, match=reason):
        parse_endorsement_key(cert.public_bytes(Encoding.DER))


def test_turin_hwid_is_eight_bytes_in_either_encoding() -> None:
    for value in (bytes(range(8)), b"\x04\x08" + bytes(range(8))):
        cert = make_cert("SEV-VCEK", new_key(), ca=False, extra=[amd_extension("4", value)])
        assert parse_endorsement_key(cert.public_bytes(Encoding.PEM)).hw_id == bytes(range(8))
