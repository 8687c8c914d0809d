from __future__ import annotations

import doctest
import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import attest.tee.snp
from attest.errors import AttestError, EvidenceFormatError
from attest.tee.claims import PlatformResult
from attest.tee.snp import verify_snp
from attest.tee.snp.certs import load_certificates, parse_endorsement_key
from attest.tee.snp.certtable import GUIDS
from attest.tee.times import AppraisalTimes
from policies.attestation import SnpRules, SnpTcb
from tests.attest.tee.snp.vectors import (
    MILAN_T,
    TRUSTEE_T,
    cert_table,
    edit,
    flip,
    forge_amd,
    milan,
    resign,
    trustee,
    vector,
)

VCEK_GUID, ASK_GUID = (next(g for g, n in GUIDS.items() if n == name) for name in ("vcek", "ask"))
BAD_SIGNATURE = "the report signature does not verify with the VCEK's key"


def at(when: datetime, **overrides: datetime) -> AppraisalTimes:
    return AppraisalTimes(when, overrides)


def verify(report: bytes, certificates: dict[str, bytes], when: datetime = MILAN_T, **rules: object) -> PlatformResult:
    return verify_snp(report, certificates=certificates, rules=SnpRules(**rules), times=at(when))  # type: ignore[arg-type]


def test_go_sev_guest_milan_is_authentic() -> None:
    report, certs = milan()
    result = verify(report, certs)
    assert result.violations == () and result.authentic
    claims = result.claims
    assert claims.platform == "sev-snp" and claims.format == "sev-snp-report-v2" and claims.signer == "vcek"
    assert claims.debug is True  # POLICY 0xB0000: the caller's debug rule refuses it, not this verifier
    assert claims.details["policy"]["debug"] is True and claims.details["policy"]["raw"] == "0xb0000"
    assert claims.report_data == bytes.fromhex("0102030405") + bytes(59)
    assert claims.evidence_sha256 == hashlib.sha256(report).hexdigest()
    assert claims.tcb["reported"] == {"bootloader": 2, "tee": 0, "snp": 5, "microcode": 68}
    assert claims.measurements["measurement"].startswith("b07af9620f3b839b")
    assert [s.split(",")[0] for s in claims.chain] == ["CN=SEV-VCEK", "CN=SEV-Milan", "CN=ARK-Milan"]
    assert claims.details["product"] == "Milan" and claims.details["chip_id"] == report[0x1A0:0x1E0].hex()
    assert claims.details["firmware_current"] == "1.49.3" and claims.details["vmpl"] == 0


@pytest.mark.parametrize(
    "when", ["2023-01-24T17:58:27+00:00", "2024-01-01T00:00:00+00:00", "2030-01-24T17:58:25+00:00"]
)
def test_trustee_milan_is_authentic_within_the_vcek_validity(when: str) -> None:
    result = verify(*trustee(), datetime.fromisoformat(when))
    assert result.violations == ()
    assert result.claims.debug is False and result.claims.details["policy"]["raw"] == "0x3001f"
    assert result.claims.tcb["reported"] == {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}
    assert result.claims.details["guest_svn"] == 4


@pytest.mark.parametrize("name", ["test-vcek-invalid-legacy.der", "test-vcek-invalid-new.der"])
def test_the_invalid_trustee_vceks_are_not_authentic(name: str) -> None:
    result = verify(trustee()[0], {"vcek": vector("trustee", name)}, datetime(2024, 1, 1, tzinfo=UTC))
    failed = result.failed("authentic")
    assert any("'CN=SEV-Milan," in r and "did not sign 'CN=SEV-VCEK," in r for r in failed)
    assert BAD_SIGNATURE in failed and any("belongs to another chip" in r for r in failed)
    assert result.claims.chain == ()


def test_a_flipped_bit_in_the_signed_body() -> None:
    report, certs = milan()
    result = verify(flip(report, 0x90), certs)  # MEASUREMENT
    assert result.failed("authentic") == (BAD_SIGNATURE,) and result.failed("fresh") == ()
    assert result.claims.measurements["measurement"].startswith("b17af962")  # what the forgery claims


def test_a_flipped_bit_in_the_signature() -> None:
    report, certs = milan()
    assert verify(flip(report, 0x2A0), certs).failed("authentic") == (BAD_SIGNATURE,)
    assert verify(flip(report, 0x2A0 + 72), certs).failed("authentic") == (BAD_SIGNATURE,)


def test_unsigned_bytes_after_the_signature_are_refused() -> None:
    report, certs = milan()
    assert verify(flip(report, 0x2A0 + 144), certs).failed("authentic") == (
        "the signature field has non-zero bytes after R and S: they are not signed, and AMD zeroes them",
    )


def test_a_flipped_bit_in_the_vcek() -> None:
    report, certs = milan()
    vcek = certs["vcek"].replace(b"Milan-B0", b"Milan-B1")  # inside the signed TBS, still well-formed
    failed = verify(report, certs | {"vcek": vcek}).failed("authentic")
    assert len(failed) == 1 and "'CN=SEV-Milan," in failed[0] and "did not sign 'CN=SEV-VCEK," in failed[0]


def test_a_flipped_bit_in_the_carried_ark() -> None:
    report, certs = milan()
    ask, ark = load_certificates(certs["ask"], "ASK")
    der = ark.public_bytes(Encoding.DER)
    bad_ark = der[:-1] + bytes([der[-1] ^ 1])
    result = verify(report, {"vcek": certs["vcek"], "ask": ask.public_bytes(Encoding.PEM), "ark": bad_ark})
    assert result.failed("authentic") == (
        "the evidence carries a root 'CN=ARK-Milan,O=Advanced Micro Devices,ST=CA,L=Santa Clara,C=US,OU=Engineering'"
        " that is not one of AMD's pinned ARKs",
    )


def test_a_corrupted_carried_ask_is_not_used() -> None:
    # The evidence's ASK is only a hint: AMD's pinned ASK vouches for the VCEK all the same.
    report, certs = milan()
    ask, _ = load_certificates(certs["ask"], "ASK")
    der = ask.public_bytes(Encoding.DER)
    result = verify(report, {"vcek": certs["vcek"], "ask": der[:-1] + bytes([der[-1] ^ 1])})
    assert result.violations == () and result.claims.chain[1].startswith("CN=SEV-Milan")


def test_a_chain_under_a_self_made_ark() -> None:
    report, certs = milan()
    ask, ark = load_certificates(certs["ask"], "ASK")
    forged = forge_amd(ark, ask, parse_endorsement_key(certs["vcek"]).cert)
    pem = b"".join(c.public_bytes(Encoding.PEM) for c in (forged.ask, forged.ark))
    result = verify(resign(report, forged.leaf_key), {"vcek": forged.leaf.public_bytes(Encoding.DER), "ask": pem})
    failed = result.failed("authentic")
    assert BAD_SIGNATURE not in failed  # the forger's VCEK did sign it: only the chain gives the forgery away
    assert any("that is not one of AMD's pinned ARKs" in r for r in failed)
    # AMD's ASK did not sign the forged VCEK, and AMD's ARK did not sign the forged ASK.
    assert any(
        re.search("'CN=SEV-Milan,.*' did not sign 'CN=SEV-VCEK,.*; 'CN=ARK-Milan,.*' did not sign 'CN=SEV-Milan,", r)
        for r in failed
    )
    assert not result.authentic and result.claims.chain == ()


def test_a_vlek_signed_report() -> None:
    report, certs = milan()
    asvk, ark = load_certificates(vector("go-sev-guest", "milanvlek.testcer"), "ASVK")
    forged = forge_amd(
        ark,
        asvk,
        parse_endorsement_key(certs["vcek"]).cert,
        leaf_name="SEV-VLEK",
        leaf_from=datetime(2023, 1, 1, tzinfo=UTC),
    )
    signed = resign(edit(report, 0x48, (1 << 2).to_bytes(4, "little")), forged.leaf_key)
    result = verify_snp(
        signed,
        certificates={"vlek": forged.leaf.public_bytes(Encoding.DER), "ask": forged.ask.public_bytes(Encoding.PEM)},
        rules=SnpRules(signers=("vcek",)),
        times=at(datetime(2023, 6, 1, tzinfo=UTC), vlek=datetime(2031, 1, 1, tzinfo=UTC)),
    )
    assert result.claims.signer == "vlek"
    (chain,) = result.failed("authentic")  # the key kind agrees and the VLEK signed it: only AMD did not sign the VLEK
    assert re.search(
        "'CN=SEV-VLEK-Milan,.*' did not sign 'CN=SEV-VLEK,.*; 'CN=ARK-Milan,.*' did not sign 'CN=SEV-VLEK-Milan,", chain
    )
    (expired,) = result.failed("fresh")
    assert expired.startswith("certificate 'CN=SEV-VLEK,") and "expired at 2029-09-24" in expired
    assert result.failed("acceptable") == ("the report is signed by the VLEK, which the policy does not accept (vcek)",)


TURIN_SPLS = {"3.1": b"\x02\x01\x04", "3.2": b"\x02\x01\x00", "3.3": b"\x02\x01\x09", "3.8": b"\x02\x01\x46"}


@pytest.mark.parametrize(
    ("changes", "reasons"),
    [
        ({"3.9": b"\x02\x01\x01", "4": b"\x04\x08" + bytes(range(8))}, []),
        ({"4": bytes(range(8))}, ["the VCEK lacks the TCB extensions for fmc"]),
        (
            {"3.9": b"\x02\x01\x02", "4": bytes(range(8))},
            ["another TCB than REPORTED_TCB: fmc 2 in the VCEK, 1 in the"],
        ),
        (
            {"3.9": b"\x02\x01\x01"},
            ["its hwID (64 bytes, 3ac3fe21e13fb099...) differs from the report's CHIP_ID (8 bytes"],
        ),
    ],
)
def test_turin_tcb_and_hwid(changes: dict[str, bytes], reasons: list[str]) -> None:
    report, certs = milan()
    turin = edit(edit(report, 0, (3).to_bytes(4, "little")), 0x188, bytes([0x1A, 0x02, 0x00]))
    turin = edit(edit(turin, 0x180, bytes([1, 4, 0, 9, 0, 0, 0, 70])), 0x1A0, bytes(range(8)) + bytes(56))
    ask, ark = load_certificates(vector("go-sev-guest", "ask_ark_turin_vcek.pem"), "ASK")
    forged = forge_amd(ark, ask, parse_endorsement_key(certs["vcek"]).cert, amd_extensions=TURIN_SPLS | changes)
    result = verify(resign(turin, forged.leaf_key), {"vcek": forged.leaf.public_bytes(Encoding.DER)})
    assert result.claims.tcb["reported"] == {"fmc": 1, "bootloader": 4, "tee": 0, "snp": 9, "microcode": 70}
    chain, *rest = result.failed("authentic")  # forged: AMD's Turin ASK did not sign it; nothing else is wrong
    assert chain.startswith("'CN=SEV-Turin,") and "did not sign 'CN=SEV-VCEK," in chain
    assert len(rest) == len(reasons) and all(want in got for want, got in zip(reasons, rest, strict=True)), rest


def test_the_package_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[4])
    failures, tried = doctest.testmod(attest.tee.snp)
    assert tried > 5 and failures == 0


def test_chip_id_mismatch_lists_both_reasons() -> None:
    report, certs = milan()
    failed = verify(flip(report, 0x1A0 + 5), certs).failed("authentic")
    assert BAD_SIGNATURE in failed
    assert (
        "the VCEK belongs to another chip: its hwID (64 bytes, 3ac3fe21e13fb099...) differs from the report's "
        "CHIP_ID (64 bytes, 3ac3fe21e13eb099...) from byte 5 on" in failed
    )


def test_a_masked_chip_id_is_not_compared() -> None:
    report, certs = milan()
    result = verify(edit(report, 0x1A0, bytes(64)), certs)
    assert result.failed("authentic") == (BAD_SIGNATURE,) and result.claims.details["chip_id_masked"] is True


def test_tcb_mismatch() -> None:
    report, certs = milan()
    failed = verify(edit(report, 0x186, b"\x06"), certs).failed("authentic")  # REPORTED_TCB.SNP 5 -> 6
    assert BAD_SIGNATURE in failed
    assert "the VCEK was issued for another TCB than REPORTED_TCB: snp 5 in the VCEK, 6 in the report" in failed


def test_vlek_flag_with_a_vcek() -> None:
    report, certs = milan()
    result = verify(edit(report, 0x48, (1 << 2).to_bytes(4, "little")), certs)
    failed = result.failed("authentic")
    assert "the report names the VLEK as its signer (SIGNING_KEY 1) but the certificate is a VCEK" in failed
    assert BAD_SIGNATURE in failed and result.claims.signer == "vlek"


def test_an_unsigned_report() -> None:
    report, certs = milan()
    result = verify(edit(report, 0x48, (7 << 2).to_bytes(4, "little")), certs)
    assert "the report is unsigned (SIGNING_KEY 7): nothing vouches for it" in result.failed("authentic")
    assert result.claims.signer is None


def test_no_vcek_given() -> None:
    result = verify_snp(milan()[0], rules=SnpRules(), times=at(MILAN_T))
    assert result.failed("authentic") == ("no VCEK certificate was given: the report's signature cannot be checked",)
    assert result.claims.tcb["reported"] == {"raw": "0x4405000000000002"}  # v2 without a VCEK: no product known


def test_an_ask_given_as_the_vcek() -> None:
    report, certs = milan()
    ask, _ = load_certificates(certs["ask"], "ASK")
    failed = verify(report, {"vcek": ask.public_bytes(Encoding.DER)}).failed("authentic")
    assert failed[0].startswith("'CN=SEV-Milan,") and failed[0].endswith(
        "is neither a VCEK nor a VLEK (CN=SEV-VCEK or CN=SEV-VLEK)"
    )
    assert "the certificate's key is not an ECDSA P-384 key" in failed


def test_v3_cpuid_names_the_product_and_the_root() -> None:
    report, certs = trustee()
    genoa = edit(edit(report, 0, (3).to_bytes(4, "little")), 0x188, bytes([0x19, 0x11, 0x01]))
    result = verify(genoa, certs, TRUSTEE_T)
    assert result.claims.format == "sev-snp-report-v3" and result.claims.details["product"] == "Genoa"
    assert any(
        "was issued by 'CN=ARK-Milan," in r and "neither a configured root" in r for r in result.failed("authentic")
    )
    unknown = edit(genoa, 0x188, bytes([0x1A, 0x50]))
    assert "CPUID family 0x1a model 0x50 is not a product whose AMD root is pinned (Milan, Genoa, Turin)" in verify(
        unknown, certs, TRUSTEE_T
    ).failed("authentic")


def test_v5_claims() -> None:
    report, certs = trustee()
    v5 = edit(edit(report, 0, (5).to_bytes(4, "little")), 0x188, bytes([0x19, 0x01, 0x01]))
    claims = verify(edit(v5, 0x1F8, b"\x03"), certs, TRUSTEE_T).claims
    assert claims.format == "sev-snp-report-v5" and claims.details["launch_mit_vector"] == "0x3"
    assert claims.details["cpuid"] == {"family": 0x19, "model": 1, "stepping": 1}


@pytest.mark.parametrize(
    ("when", "overrides", "reasons"),
    [
        ("2022-09-23T00:00:00+00:00", {}, ["'CN=SEV-VCEK,.*' is not valid until 2022-09-24T00:55:28"]),
        ("2029-09-25T00:00:00+00:00", {}, ["'CN=SEV-VCEK,.*' expired at 2029-09-24T00:55:28"]),
        (
            "2046-01-01T00:00:00+00:00",
            {},
            [
                "'CN=SEV-VCEK,.*' expired at 2029",
                "'CN=SEV-Milan,.*' expired at 2045",
                "'CN=ARK-Milan,.*' expired at 2045",
            ],
        ),
        ("2031-01-01T00:00:00+00:00", {"vcek": MILAN_T}, []),
        ("2023-01-01T00:00:00+00:00", {"ark": datetime(2046, 1, 1, tzinfo=UTC)}, ["'CN=ARK-Milan,.*' expired at 2045"]),
        (
            "2023-01-01T00:00:00+00:00",
            {"ask": datetime(2019, 1, 1, tzinfo=UTC)},
            ["'CN=SEV-Milan,.*' is not valid until"],
        ),
    ],
)
def test_certificate_times(when: str, overrides: dict[str, datetime], reasons: list[str]) -> None:
    report, certs = milan()
    result = verify_snp(
        report, certificates=certs, rules=SnpRules(), times=at(datetime.fromisoformat(when), **overrides)
    )
    assert result.authentic  # the report was signed by AMD's key whenever it is judged
    fresh = result.failed("fresh")
    assert len(fresh) == len(reasons)
    for reason, text in zip(reasons, fresh, strict=True):
        assert re.search(reason, text), text


def test_the_certificate_table() -> None:
    report, certs = milan()
    blob = cert_table((VCEK_GUID, certs["vcek"]), (ASK_GUID, certs["ask"]))
    assert verify_snp(report, auxblob=blob, rules=SnpRules(), times=at(MILAN_T)).violations == ()
    # A VCEK given by the caller replaces the host's (here a stale one from another chip).
    stale = cert_table((VCEK_GUID, vector("trustee", "test-vcek.der")))
    assert not verify_snp(report, auxblob=stale, rules=SnpRules(), times=at(MILAN_T)).authentic
    fixed = verify_snp(report, auxblob=stale, certificates={"vcek": certs["vcek"]}, rules=SnpRules(), times=at(MILAN_T))
    assert fixed.violations == ()
    with pytest.raises(EvidenceFormatError, match="no terminating all-zero entry"):
        verify_snp(report, auxblob=blob[:20], rules=SnpRules(), times=at(MILAN_T))
    with pytest.raises(AttestError, match="unknown SEV-SNP certificate name 'chain'"):
        verify_snp(report, certificates={"chain": certs["ask"]}, rules=SnpRules(), times=at(MILAN_T))


def test_truncated_report() -> None:
    with pytest.raises(EvidenceFormatError, match="truncated: 1183 bytes"):
        verify(milan()[0][:-1], milan()[1])


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        ({"measurements": ("00" * 48,)}, "MEASUREMENT a1f39304.* is not one of the 1 values the policy allows"),
        ({"host_data": ("11" * 32,)}, "HOST_DATA 0{64} is not one of the 1 values the policy allows"),
        ({"id_key_digests": ("22" * 48,)}, "ID_KEY_DIGEST 03562158.* is not one of the 1 values the policy allows"),
        ({"author_key_digests": ("33" * 48,)}, "AUTHOR_KEY_DIGEST 0{96} is not one of the 1 values the policy allows"),
        (
            {"min_tcb": SnpTcb(snp=9, microcode=116)},
            "REPORTED_TCB is below the policy's minimum: snp 8 < 9, microcode 115 < 116",
        ),
        ({"signers": ("vlek",)}, r"the report is signed by the VCEK, which the policy does not accept \(vlek\)"),
        ({"allow_smt": False}, r"SMT is enabled on the host \(PLATFORM_INFO.SMT_EN\), which the policy forbids"),
    ],
)
def test_policy_rules(rules: dict[str, object], reason: str) -> None:
    result = verify(*trustee(), TRUSTEE_T, **rules)
    assert result.authentic and result.failed("fresh") == ()
    (refused,) = result.failed("acceptable")
    assert re.fullmatch(reason, refused), refused


def test_policy_rules_that_pass() -> None:
    report, certs = trustee()
    claims = verify(report, certs, TRUSTEE_T).claims
    rules = {
        "measurements": (claims.measurements["measurement"],),
        "id_key_digests": (claims.details["id_key_digest"],),
        "min_tcb": SnpTcb(bootloader=3, snp=8, microcode=115, fmc=200),  # fmc: Milan has none
        "signers": ("vcek",),
        "max_vmpl": 0,
    }
    assert verify(report, certs, TRUSTEE_T, **rules).violations == ()


def test_vmpl_and_migration_agent_rules() -> None:
    report, certs = trustee()
    changed = edit(edit(report, 0x30, (2).to_bytes(4, "little")), 0x0A, b"\x07")  # VMPL 2; POLICY bit 18
    result = verify(changed, certs, TRUSTEE_T, max_vmpl=1)
    assert result.failed("acceptable") == (
        "the guest policy allows a migration agent (POLICY.MIGRATE_MA), which the policy forbids",
        "the report comes from VMPL 2, above the policy's maximum VMPL 1",
    )
    assert BAD_SIGNATURE in result.failed("authentic")
    assert verify(changed, certs, TRUSTEE_T, max_vmpl=2, allow_migration_agent=True).failed("acceptable") == ()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 0x49F), st.integers(0, 255)), min_size=1, max_size=4))
def test_fuzz_mutated_reports(changes: list[tuple[int, int]]) -> None:
    report, certs = trustee()
    data = bytearray(report)
    for offset, value in changes:
        data[offset] = value
    try:
        result = verify(bytes(data), certs, TRUSTEE_T)
    except EvidenceFormatError:
        return
    if bytes(data) != report:
        assert not result.authentic
