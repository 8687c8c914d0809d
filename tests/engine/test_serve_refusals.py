"""``modelgate engine serve`` refuses before serving: exit 1, its own reason, and no model built.

Each case breaks one thing about a signed model. Where the signature itself must be valid over bad bytes
(a truncated GGUF, a pickle), the bundle comes from ``sign_unchecked``, as a careless signer would make it.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import engine.loader
import engine.server
from attest.bundle import KeySigner
from attest.keys import PrivateKey, generate_private_key, save_public_key
from attest.signing import sign_model, write_bundle
from modelgate.cli import main
from tests.builders import sign_unchecked, tiny_chat_model, tiny_gguf, write_simulated_tee_policy


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return generate_private_key("ecdsa-p256")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_chat_model(tmp_path_factory.mktemp("pristine") / "tiny-chat")


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Production's rules, with the simulated TEE accepted so that the TEE is not what refuses."""
    return write_simulated_tee_policy(tmp_path_factory.mktemp("policy"))


@pytest.fixture()
def serve(tmp_path: Path, key: PrivateKey, policy: Path, capsys: pytest.CaptureFixture[str],
          monkeypatch: pytest.MonkeyPatch) -> Callable[[Path, dict[str, Any]], tuple[int, dict[str, Any], str]]:
    """Run the CLI on a model and bundle; building a model or serving fails the test outright."""
    monkeypatch.setenv("MODELGATE_ENGINE_TOKEN", "test-token-0123456789")
    monkeypatch.setattr(engine.loader, "build_model", _never("a model was built"))
    monkeypatch.setattr(engine.server, "serve", _never("the server started"))
    save_public_key(tmp_path / "key.pub.pem", key.public_key())

    def run(model: Path, bundle: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
        write_bundle(bundle, tmp_path / "bundle.sigstore.json")
        rc = main(["engine", "serve", "--model", str(model), "--bundle", str(tmp_path / "bundle.sigstore.json"),
                   "--policy", str(policy), "--key", str(tmp_path / "key.pub.pem"), "--device", "cpu", "--json"])
        printed = capsys.readouterr()
        return rc, json.loads(printed.out), printed.err

    return run


def _never(what: str) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        pytest.fail(f"{what} although the model should have been refused")

    return fail


def _copy(source: Path, target: Path) -> Path:
    target.mkdir()
    for f in source.iterdir():
        (target / f.name).write_bytes(f.read_bytes())
    return target


def _refusal(rc: int, out: dict[str, Any], err: str) -> str:
    """The reason in the refusal record on stderr, after checking it agrees with the error on stdout."""
    assert rc == 1 and out["ok"] is False and out["error"] == "LoadRefused"
    record = json.loads(err)
    assert record["decision"] == "refused" and record["files"] == {}
    assert out["reason"] == f"model not loaded: {record['reason']}"
    return str(record["reason"])


def test_a_model_signed_by_another_key_is_refused(serve, pristine: Path, tmp_path: Path) -> None:
    model = _copy(pristine, tmp_path / "model")
    stranger = generate_private_key("ecdsa-p256")
    reason = _refusal(*serve(model, sign_model(model, KeySigner(stranger)).bundle))
    assert reason.startswith("signed by key ") and reason.endswith(", which is not trusted")


def test_a_tampered_weight_byte_is_refused(serve, key: PrivateKey, pristine: Path, tmp_path: Path) -> None:
    model = _copy(pristine, tmp_path / "model")
    bundle = sign_model(model, KeySigner(key)).bundle
    data = bytearray((model / "model.safetensors").read_bytes())
    data[len(data) // 2] ^= 1
    (model / "model.safetensors").write_bytes(bytes(data))
    assert "model.safetensors: content differs from the signed file" in _refusal(*serve(model, bundle))


def test_a_pickle_added_after_signing_is_refused(serve, key: PrivateKey, pristine: Path, tmp_path: Path) -> None:
    model = _copy(pristine, tmp_path / "model")
    bundle = sign_model(model, KeySigner(key)).bundle
    (model / "extra.pkl").write_bytes(pickle.dumps({"a": 1}))
    assert "extra.pkl: not signed" in _refusal(*serve(model, bundle))


def test_a_signed_pickle_is_refused_by_the_format_firewall(serve, key: PrivateKey, pristine: Path,
                                                           tmp_path: Path) -> None:
    model = _copy(pristine, tmp_path / "model")
    (model / "extra.pkl").write_bytes(pickle.dumps({"a": 1}))
    reason = _refusal(*serve(model, sign_unchecked(model, KeySigner(key))))
    assert "extra.pkl" in reason and "pickle" in reason.lower() and "not signed" not in reason


def test_a_truncated_gguf_signed_as_truncated_is_refused_by_the_strict_parser(serve, key: PrivateKey,
                                                                               tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    gguf = tiny_gguf(tmp_path / "model" / "model.gguf")
    gguf.write_bytes(gguf.read_bytes()[:-100])
    reason = _refusal(*serve(gguf.parent, sign_unchecked(gguf.parent, KeySigner(key))))
    assert reason.startswith("model.gguf: ") and "past the end" in reason


@pytest.mark.parametrize(("template", "why"), [
    ("{{ ''.__class__.__mro__ }}", "unsafe attribute '__class__'"),
    ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", "time limit"),
], ids=["mro-probe", "endless-loop"])
def test_a_hostile_chat_template_in_a_signed_model_is_refused_at_load(
    serve, key: PrivateKey, pristine: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], template: str,
    why: str,
) -> None:
    model = _copy(pristine, tmp_path / "model")
    config = json.loads((model / "tokenizer_config.json").read_text())
    (model / "tokenizer_config.json").write_text(json.dumps(config | {"chat_template": template}))
    rc, out, err = serve(model, sign_model(model, KeySigner(key)).bundle)
    record = json.loads(err)  # the files verified, the template did not: the record says both
    assert rc == 1 and out["error"] == "LoadRefused" and record["decision"] == "refused" and record["files"]
    assert record["reason"].startswith("chat template refused at load: ") and why in record["reason"]
    assert out["reason"] == f"model not loaded: {record['reason']}"


def test_the_production_policy_refuses_a_machine_without_a_tee(tmp_path: Path, key: PrivateKey, pristine: Path,
                                                               capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELGATE_ENGINE_TOKEN", "test-token-0123456789")
    monkeypatch.setattr(engine.loader, "build_model", _never("a model was built"))
    save_public_key(tmp_path / "key.pub.pem", key.public_key())
    write_bundle(sign_model(pristine, KeySigner(key)).bundle, tmp_path / "bundle.json")
    production = Path(engine.__file__).parent.parent / "policies" / "production.yaml"
    rc = main(["engine", "serve", "--model", str(pristine), "--bundle", str(tmp_path / "bundle.json"), "--policy",
               str(production), "--key", str(tmp_path / "key.pub.pem"), "--tee", "simulated", "--json"])
    printed = capsys.readouterr()
    record = json.loads(printed.err)
    assert rc == 1 and record["decision"] == "refused" and record["attestation"]["simulated"] is True
    assert "simulated evidence (signed with a local key: no hardware protects this machine) is refused by " \
           "policy 'production'" in record["reason"]
    assert "requires authentic evidence of sev-snp or tdx" in record["reason"]
