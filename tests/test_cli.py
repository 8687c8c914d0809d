"""The `modelgate` command as users run it: real processes, exit codes 0/1/2 and --json output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import shared_path

MODELGATE = [sys.executable, "-m", "modelgate"]


def run(*args: str | Path, check_json: bool = True) -> tuple[int, dict | str]:
    proc = subprocess.run([*MODELGATE, *map(str, args)], capture_output=True, text=True, timeout=300,
                          env=os.environ | {"COLUMNS": "200"})
    if check_json and "--json" in args:
        return proc.returncode, json.loads(proc.stdout)
    return proc.returncode, proc.stdout + proc.stderr


def test_provenance_flow_and_exit_codes(hf_model: Path, tmp_path: Path) -> None:
    rc, out = run("sbom", hf_model, "-o", tmp_path / "bom.json", "--license", "Apache-2.0", "--json")
    assert rc == 0 and out["ok"] and out["files"] == 4
    rc, out = run("keygen", "-o", tmp_path / "k.key.pem", "--json")
    assert rc == 0 and Path(out["public_key"]) == tmp_path / "k.pub.pem"
    rc, out = run("sign", hf_model, "--sbom", tmp_path / "bom.json", "--key", tmp_path / "k.key.pem",
                  "-o", tmp_path / "b.json", "--json")
    assert rc == 0 and out["files"] == 4 and out["format"] == "modelgate"
    rc, out = run("verify", hf_model, "--bundle", tmp_path / "b.json", "--key", tmp_path / "k.pub.pem",
                  "--policy", "policies/production.yaml", "--json")
    assert rc == 0 and out["verified"] and out["policy"] == "production"
    assert out["sbom_serial"] == json.loads((tmp_path / "bom.json").read_text())["serialNumber"]

    (hf_model / "config.json").write_text('{"tampered": true}')
    rc, out = run("verify", hf_model, "--bundle", tmp_path / "b.json", "--key", tmp_path / "k.pub.pem", "--json")
    assert rc == 1 and out["ok"] is False and "config.json: content differs" in out["reason"]
    rc, text = run("verify", hf_model, "--bundle", tmp_path / "b.json", "--key", tmp_path / "k.pub.pem")
    assert rc == 1 and "verification failed" in text and "config.json" in text


def test_symlink_in_the_model_is_a_verification_failure(hf_model: Path, tmp_path: Path) -> None:
    run("keygen", "-o", tmp_path / "k.key.pem")
    run("sign", hf_model, "--key", tmp_path / "k.key.pem", "-o", tmp_path / "b.json")
    (hf_model / "tokenizer.json").rename(tmp_path / "tokenizer.json")
    (hf_model / "tokenizer.json").symlink_to(tmp_path / "tokenizer.json")
    rc, out = run("verify", hf_model, "--bundle", tmp_path / "b.json", "--key", tmp_path / "k.pub.pem", "--json")
    assert rc == 1 and "tokenizer.json: symbolic links are not allowed" in out["reason"]


def test_production_policy_trusts_nobody_by_default(hf_model: Path, tmp_path: Path) -> None:
    run("keygen", "-o", tmp_path / "k.key.pem")
    run("sign", hf_model, "--key", tmp_path / "k.key.pem", "-o", tmp_path / "b.json")
    rc, out = run("verify", hf_model, "--bundle", tmp_path / "b.json", "--policy", "policies/production.yaml",
                  "--json")
    assert rc == 1 and "no trusted" in out["reason"]


def test_usage_and_input_errors_exit_2(hf_model: Path, tmp_path: Path) -> None:
    rc, _ = run("verify", hf_model)  # --bundle missing
    assert rc == 2
    rc, out = run("sign", hf_model, "--key", tmp_path / "absent.pem", "-o", tmp_path / "b.json", "--json")
    assert rc == 2 and "absent.pem" in out["reason"]
    rc, out = run("verify", hf_model, "--bundle", tmp_path / "b.json", "--key", tmp_path / "absent.pem", "--json")
    assert rc == 2
    (tmp_path / "bad.yaml").write_text("trust: {nonsense: 1}\n")
    rc, out = run("verify", hf_model, "--bundle", hf_model / "config.json", "--policy", tmp_path / "bad.yaml",
                  "--json")
    assert rc == 2 and "nonsense" in out["reason"]


def test_garbage_bundle_is_a_verification_failure(hf_model: Path, tmp_path: Path) -> None:
    run("keygen", "-o", tmp_path / "k.key.pem")
    (tmp_path / "b.json").write_text("{not json")
    rc, out = run("verify", hf_model, "--bundle", tmp_path / "b.json", "--key", tmp_path / "k.pub.pem", "--json")
    assert rc == 1 and out["ok"] is False


def test_sbom_refuses_pickle_with_exit_2(hf_model: Path, tmp_path: Path) -> None:
    import pickle

    (hf_model / "pytorch_model.bin").write_bytes(pickle.dumps([1, 2]))
    rc, out = run("sbom", hf_model, "-o", tmp_path / "bom.json", "--json")
    assert rc == 2 and "pytorch_model.bin" in out["reason"] and "safetensors" in out["reason"]
    assert not (tmp_path / "bom.json").exists()


def test_cli_verifies_upstream_keyless_bundle_offline() -> None:
    model = shared_path("vectors", "signing", "model-transparency", "v1.1.0-sigstore")
    rc, out = run("verify", model, "--bundle", model / "model.sig", "--ignore-paths", "ignore-me",
                  "--identity", "stefanb@us.ibm.com", "--issuer", "https://sigstore.verify.ibm.com/oauth2",
                  "--trust-config", shared_path("vectors", "signing", "sigstore-prod-trust-config.json"), "--json")
    assert rc == 0, out
    assert out["signer"]["kind"] == "keyless" and out["signer"]["time_source"] == "transparency-log"


@pytest.mark.slow
def test_default_model_end_to_end(default_model: Path, tmp_path: Path) -> None:
    rc, out = run("sbom", default_model, "-o", tmp_path / "bom.json", "--json")
    assert rc == 0, out
    bom = json.loads((tmp_path / "bom.json").read_text())
    model = bom["components"][0]
    assert model["type"] == "machine-learning-model" and "modelCard" in model
    run("keygen", "-o", tmp_path / "k.key.pem")
    rc, out = run("sign", default_model, "--sbom", tmp_path / "bom.json", "--key", tmp_path / "k.key.pem",
                  "-o", tmp_path / "b.json", "--json")
    assert rc == 0, out
    rc, out = run("verify", default_model, "--bundle", tmp_path / "b.json", "--key", tmp_path / "k.pub.pem",
                  "--policy", "policies/dev.yaml", "--json")
    assert rc == 0 and out["subjects"][0]["format"] == "gguf"
