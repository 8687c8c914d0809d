"""The detector on real corpora: the small fixture copy always, the development sets when ../shared is there."""

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from gateway.detect.injection import ALERT_AT, InjectionDetector

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "tests" / "fixtures" / "injection" / "samples.jsonl"
DATASETS = Path(os.environ.get("MODELGATE_DATASETS", ROOT.parent / "shared" / "datasets" / "agent"))
DETECTOR = InjectionDetector()


def _eval_module():  # scripts/ is not a package: load the evaluation script by path
    spec = importlib.util.spec_from_file_location("eval_injection", ROOT / "scripts" / "eval_injection.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def _datasets() -> Path:
    if not (DATASETS / "asb").is_dir():
        pytest.skip(f"development datasets not found at {DATASETS} (set MODELGATE_DATASETS or lay ../shared beside "
                    "the checkout)")
    return DATASETS


def test_fixture_examples_are_judged_as_labelled() -> None:
    rows = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 40 and {r["corpus"] for r in rows} >= {"agentdojo", "bipia", "asb-output", "asb-tools"}
    wrong = [r for r in rows if (DETECTOR.scan(r["text"], r["kind"]).score >= ALERT_AT) != r["positive"]]
    assert wrong == []


def test_agentdojo_and_asb_meet_their_targets() -> None:
    data = _datasets()
    module = _eval_module()
    tallies = module.evaluate(module.agentdojo(data), DETECTOR, 0)["agentdojo"]["*"].row()
    assert tallies["tpr"] >= 0.95 and tallies["fpr"] <= 0.01
    asb = module.evaluate(module.asb(data), DETECTOR, 0)
    assert asb["asb-output"]["*"].row()["tpr"] >= 0.9
    assert asb["asb-tools"]["normal"].false <= 1


def test_bipia_clean_contexts_stay_clean() -> None:
    data = _datasets()
    module = _eval_module()
    samples = (s for s in module.bipia(data) if not s.positive)
    row = module.evaluate(samples, DETECTOR, 0)["bipia"]["*"].row()
    assert row["negatives"] == 200 and row["fpr"] <= 0.02
