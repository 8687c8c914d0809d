from pathlib import Path

import pytest

from policies import Policy, PolicyError, load_policy, shipped_policy


def test_shipped_policies_load() -> None:
    dev, prod = shipped_policy("dev"), shipped_policy("production")
    assert (dev.name, dev.trust.require_sbom) == ("dev", False)
    assert (prod.name, prod.trust.require_sbom) == ("production", True)
    assert prod.trust.keys == () and prod.trust.keyless == ()


def test_defaults_are_safe(tmp_path: Path) -> None:
    policy = load_policy_text("version: 1\n", tmp_path)
    assert policy.trust.require_sbom is True
    assert policy.trust.allowed_weight_formats == ("safetensors", "gguf")
    assert policy.trust.keys == () and policy.trust.certificate_roots == ()


def test_relative_paths_resolve_against_the_policy_folder(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("trust:\n  keys: [keys/a.pem]\n  certificate_roots: [{path: ca.pem}]\n")
    policy = load_policy(tmp_path / "p.yaml")
    assert policy.trust.keys == ((tmp_path / "keys/a.pem").resolve(),)
    assert policy.trust.certificate_roots[0].path == (tmp_path / "ca.pem").resolve()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("version: 2\n", "version"),
        ("trust:\n  unknown_field: 1\n", "unknown_field"),
        ("trust:\n  allowed_weight_formats: [pickle]\n", "allowed_weight_formats"),
        ("- a\n- b\n", "mapping"),
        ("trust: [\n", "not valid YAML"),
        ("trust:\n  keyless: [{identity: '', issuer: x}]\n", "identity"),
    ],
)
def test_invalid_policies_are_refused_with_the_reason(tmp_path: Path, text: str, why: str) -> None:
    with pytest.raises(PolicyError, match=why):
        load_policy_text(text, tmp_path)


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy"):
        load_policy(tmp_path / "absent.yaml")


def test_policy_is_frozen() -> None:
    with pytest.raises(Exception, match="frozen"):
        shipped_policy("dev").name = "x"  # type: ignore[misc]


def load_policy_text(text: str, folder: Path) -> Policy:
    (folder / "policy.yaml").write_text(text)
    return load_policy(folder / "policy.yaml")


def test_attestation_defaults_fail_closed(tmp_path: Path) -> None:
    section = load_policy_text("version: 1\n", tmp_path).attestation
    assert section.required == (("sev-snp", "tdx"),)
    assert (section.allow_simulated, section.allow_debug) == (False, False)
    assert section.tdx.tcb_statuses == ("UpToDate",) and section.snp.max_vmpl == 3


def test_shipped_attestation_sections() -> None:
    assert shipped_policy("dev").attestation.allow_simulated is True
    assert shipped_policy("production").attestation.allow_simulated is False


@pytest.mark.parametrize(
    "text",
    [
        "attestation: {snp: {measurements: [abcd]}}\n",  # not 48 bytes
        "attestation: {tdx: {mrtd: ['" + "zz" * 48 + "']}}\n",  # not hex
        "attestation: {required: [[sgx]]}\n",  # no such platform
        "attestation: {tdx: {tcb_statuses: [Fine]}}\n",  # not an Intel status
        "attestation: {max_evidence_age_s: 0}\n",
    ],
)
def test_attestation_section_is_validated(tmp_path: Path, text: str) -> None:
    with pytest.raises(PolicyError):
        load_policy_text(text, tmp_path)


def test_measurements_are_normalised_to_lower_case(tmp_path: Path) -> None:
    policy = load_policy_text("attestation: {snp: {measurements: ['" + "AB" * 48 + "']}}\n", tmp_path)
    assert policy.attestation.snp.measurements == ("ab" * 48,)
