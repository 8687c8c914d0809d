"""`modelgate sbom`: in process through ``modelgate.cli.main``, and once as the installed command."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelgate.cli import main
from sbom.bom import bom_file_digests, load_bom


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    rc = main(["sbom", *map(str, args)])
    return rc, capsys.readouterr().out


def _load(path: Path) -> dict[str, Any]:
    return load_bom(path.read_bytes(), path.name)


def test_json_summary_and_options(hf_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model.cdx.json"
    rc, stdout = _run(capsys, hf_model, "-o", out, "--json", "--supplier", "ACME", "--author", "Jane",
                      "--version", "1.0", "--license", "apache-2.0", "--base-model", "org/base")
    assert rc == 0
    summary = json.loads(stdout)
    bom = _load(out)
    assert summary == {
        "ok": True,
        "output": str(out),
        "serialNumber": bom["serialNumber"],
        "model": "tiny-llama",
        "files": 4,
        "bytes": sum(f.stat().st_size for f in hf_model.iterdir()),
        "facts": summary["facts"],
    }
    assert summary["facts"]["architecture"] == "LlamaForCausalLM" and "roles" not in summary["facts"]
    model = bom["components"][0]
    assert (model["supplier"]["name"], model["authors"][0]["name"], model["version"]) == ("ACME", "Jane", "1.0")
    assert model["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert model["pedigree"]["ancestors"][0]["name"] == "org/base"


def test_human_summary(gguf_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, stdout = _run(capsys, gguf_model, "-o", tmp_path / "m.cdx.json")
    assert rc == 0
    assert "wrote" in stdout and "CycloneDX 1.6" in stdout and "quantization F32" in stdout


def test_bom_written_inside_the_model_is_not_part_of_it(
    hf_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = hf_model / "model.cdx.json"
    for _ in range(2):
        assert _run(capsys, hf_model, "-o", out, "--json")[0] == 0
    assert sorted(bom_file_digests(_load(out))) == ["config.json", "model.safetensors", "tokenizer.json",
                                                    "tokenizer_config.json"]
    assert _run(capsys, hf_model, "-o", tmp_path / "b.json", "--ignore-paths", "tokenizer.json",
                "--ignore-paths", out, "--json")[0] == 0
    assert "tokenizer.json" not in bom_file_digests(_load(tmp_path / "b.json"))


def test_refused_file_exits_2_and_writes_nothing(
    hf_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (hf_model / "training_args.bin").write_bytes(pickle.dumps({"lr": 1e-4}))
    out = tmp_path / "model.cdx.json"
    rc, stdout = _run(capsys, hf_model, "-o", out, "--json")
    assert rc == 2 and not out.exists()
    assert json.loads(stdout) | {"reason": ""} == {"ok": False, "error": "RefusedFormatError", "reason": ""}


def test_unwritable_output_exits_2(gguf_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, stdout = _run(capsys, gguf_model, "-o", tmp_path / "missing" / "m.cdx.json", "--json")
    assert rc == 2 and json.loads(stdout)["error"] == "BomError"


def test_installed_command(gguf_model: Path, tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("modelgate")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "modelgate"]
    out = tmp_path / "m.cdx.json"
    proc = subprocess.run([*command, "sbom", str(gguf_model), "-o", str(out), "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["serialNumber"] == _load(out)["serialNumber"]
    assert proc.stderr == ""  # no progress bar without a terminal
