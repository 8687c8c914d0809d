"""The OpenAI server end to end: a real uvicorn on a real socket, driven by the real ``openai`` client.

The model is a tiny random Llama with a trained byte-level BPE tokenizer, loaded through the verified
path; its output is gibberish, but deterministic, which is all these tests need.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from cryptography.hazmat.primitives.serialization import load_der_public_key

from attest.bundle import KeySigner
from attest.errors import SignatureError
from attest.keys import generate_private_key, save_public_key, verify_bytes
from attest.signing import sign_model, write_bundle
from attest.tee.binding import Binding
from attest.trust import TrustAnchors
from engine.async_engine import AsyncEngine
from engine.chat_template import ChatTemplate
from engine.identity import challenge_message
from engine.loader import LoadedModel, build_loaded_model
from engine.server import create_app
from engine.verified_load import load_verified
from modelgate.cli import main
from policies.loader import shipped_policy_path
from tests.builders import simulated_tee, simulated_tee_policy, tiny_chat_model, write_simulated_tee_policy
from tests.servers import BackgroundServer

TOKEN = "test-token-0123456789"
MODEL = "tiny-chat"
HELLO = [{"role": "user", "content": "Hello, how are you today?"}]


@pytest.fixture(scope="module")
def signed_tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The tiny model folder, its bundle and the public key, as `modelgate sign` would leave them."""
    base = tmp_path_factory.mktemp("tiny")
    folder = tiny_chat_model(base / "tiny-chat")
    key = generate_private_key("ecdsa-p256")
    write_bundle(sign_model(folder, KeySigner(key)).bundle, base / "bundle.sigstore.json")
    save_public_key(base / "key.pub.pem", key.public_key())
    return folder, base / "bundle.sigstore.json", base / "key.pub.pem"


@pytest.fixture(scope="module")
def loaded(signed_tiny: tuple[Path, Path, Path]) -> LoadedModel:
    from attest.keys import load_public_key

    folder, bundle, public = signed_tiny
    anchors = TrustAnchors(keys=(load_public_key(public),))
    artifact = load_verified(folder, bundle.read_bytes(), anchors, simulated_tee_policy(), **simulated_tee())
    return build_loaded_model(artifact, device="cpu")


@pytest.fixture(scope="module")
def engine(loaded: LoadedModel) -> Iterator[AsyncEngine]:
    engine = AsyncEngine.from_loaded(loaded, num_slots=8, max_seq_len=512, prefill_budget=512)
    yield engine
    engine.shutdown()


@pytest.fixture(scope="module")
def server(loaded: LoadedModel, engine: AsyncEngine) -> Iterator[BackgroundServer]:
    app = create_app(loaded, engine, model_name=MODEL, api_token=TOKEN, max_prompt_tokens=490)
    server = BackgroundServer(app)
    yield server
    server.stop()


@pytest.fixture()
def client(server: BackgroundServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, max_retries=0, timeout=60) as client:
        yield client


def _chat(client: openai.OpenAI, **kwargs: object) -> openai.types.chat.ChatCompletion:
    body = {"model": MODEL, "messages": HELLO, "temperature": 0.0, "max_tokens": 12} | kwargs
    return client.chat.completions.create(**body)  # type: ignore[call-overload, no-any-return]


def test_models_health_and_metrics(client: openai.OpenAI, server: BackgroundServer, loaded: LoadedModel) -> None:
    assert [m.id for m in client.models.list()] == [MODEL]
    health = httpx.get(f"{server.url}/health").json()
    assert health["model"] == MODEL and health["manifest_digest"] == loaded.record.manifest_digest
    assert len(health["load_record_sha256"]) == 64 and health["policy"] == "production"
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    _chat(client)
    metrics = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert "# TYPE modelgate_engine_requests_total counter" in metrics
    values = dict(line.split() for line in metrics.splitlines() if not line.startswith("#"))
    assert float(values["modelgate_engine_generation_tokens_total"]) >= 12


def test_attestation_answers_a_challenge_with_the_attested_key(server: BackgroundServer, loaded: LoadedModel) -> None:
    url, auth = f"{server.url}/v1/attestation", {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(url + "?nonce=" + "00" * 32).status_code == 401
    assert httpx.get(url + "?nonce=abc", headers=auth).status_code == 400
    nonce = os.urandom(32)
    answer = httpx.get(url + f"?nonce={nonce.hex()}", headers=auth).json()
    record = answer["load_record"]
    assert record["manifest_digest"] == loaded.record.manifest_digest and record["attestation"]["accepted"]
    key = bytes.fromhex(answer["identity_key"])
    assert key == loaded.identity.public_der
    # the evidence binds that key: recomputing the report data from the record's binding gives the evidence's
    binding = Binding(bytes.fromhex(record["attestation"]["nonce"]), record["manifest_digest"], key)
    assert binding.report_data().hex() == record["attestation"]["report_data"]
    message = challenge_message(nonce, json.dumps(record, sort_keys=True).encode())
    verify_bytes(load_der_public_key(key), bytes.fromhex(answer["signature"]), message)  # type: ignore[arg-type]
    with pytest.raises(SignatureError):
        verify_bytes(load_der_public_key(key), bytes.fromhex(answer["signature"]),  # type: ignore[arg-type]
                     challenge_message(os.urandom(32), json.dumps(record, sort_keys=True).encode()))


def test_chat_and_its_stream_agree(client: openai.OpenAI) -> None:
    reply = _chat(client, max_tokens=20)
    choice = reply.choices[0]
    assert choice.finish_reason == "length" and choice.message.role == "assistant" and choice.message.content
    assert reply.usage is not None and reply.usage.completion_tokens == 20 and reply.usage.prompt_tokens > 5
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 20
    chunks = list(_chat(client, max_tokens=20, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == choice.message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage == reply.usage


def test_completions_single_and_batched(client: openai.OpenAI) -> None:
    one = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=8, temperature=0)
    assert one.choices[0].finish_reason == "length" and one.usage and one.usage.completion_tokens == 8
    two = client.completions.create(model=MODEL, prompt=["Hello", "The capital of France is"], max_tokens=8,
                                    temperature=0, logprobs=1)
    assert [c.index for c in two.choices] == [0, 1] and two.choices[1].text == one.choices[0].text
    assert two.choices[1].logprobs and len(two.choices[1].logprobs.token_logprobs or []) == 8
    tops = two.choices[1].logprobs.top_logprobs or []
    assert len(tops) == 8 and all(len(top) == 1 for top in tops)
    assert list(tops[0].values()) == [pytest.approx((two.choices[1].logprobs.token_logprobs or [0])[0])]  # greedy
    streamed = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=8,
                                         temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in streamed) == one.choices[0].text


def test_top_logprobs_rank_the_alternatives_and_include_the_greedy_choice(client: openai.OpenAI) -> None:
    answer = _chat(client, logprobs=True, top_logprobs=3)
    assert answer.choices[0].logprobs and answer.choices[0].logprobs.content
    for position in answer.choices[0].logprobs.content:
        ranked = [alt.logprob for alt in position.top_logprobs]
        assert len(ranked) == 3 and ranked == sorted(ranked, reverse=True)
        assert position.top_logprobs[0].token == position.token and ranked[0] == pytest.approx(position.logprob)
    streamed = client.chat.completions.create(model=MODEL, messages=HELLO, temperature=0.0, max_tokens=12,
                                              logprobs=True, top_logprobs=2, stream=True)
    positions = [p for chunk in streamed if chunk.choices and chunk.choices[0].logprobs
                 for p in chunk.choices[0].logprobs.content or []]
    assert positions and all(len(p.top_logprobs) == 2 for p in positions)
    with pytest.raises(openai.BadRequestError, match="top_logprobs needs logprobs"):
        _chat(client, top_logprobs=2)


def test_n_choices_seed_and_logprobs(client: openai.OpenAI) -> None:
    sampled = {"temperature": 1.0, "seed": 7, "n": 2, "max_tokens": 16, "logprobs": True}
    first, again = _chat(client, **sampled), _chat(client, **sampled)
    assert [c.index for c in first.choices] == [0, 1]
    assert [c.message.content for c in first.choices] == [c.message.content for c in again.choices]
    assert first.choices[0].message.content != first.choices[1].message.content  # seed + index per choice
    assert first.usage and first.usage.completion_tokens == 32
    content = first.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None and len(content) == 16
    assert all(t.logprob <= 0 and t.bytes == list(t.token.encode()) and t.top_logprobs == [] for t in content)


def test_stop_string_ends_the_text_before_it(client: openai.OpenAI) -> None:
    free = _chat(client, max_tokens=30).choices[0].message.content or ""
    stop = free[10:13]
    stopped = _chat(client, max_tokens=30, stop=[stop]).choices[0]
    assert stopped.finish_reason == "stop" and stopped.message.content == free[: free.find(stop)]
    streamed = _chat(client, max_tokens=30, stop=stop, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == stopped.message.content


def test_errors_use_openai_shape(client: openai.OpenAI, server: BackgroundServer) -> None:
    with pytest.raises(openai.AuthenticationError):
        _chat(client.with_options(api_key="wrong"))
    bare = httpx.post(f"{server.url}/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
    assert bare.status_code == 401 and set(bare.json()["error"]) == {"message", "type", "param", "code"}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    huge = httpx.post(f"{server.url}/v1/chat/completions", content=b"x" * (2 << 20), headers=auth)
    assert huge.status_code == 413
    bad_json = httpx.post(f"{server.url}/v1/chat/completions", content=b'{"model": ', headers=auth)
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "invalid_json"
    with pytest.raises(openai.BadRequestError) as bad_field:
        _chat(client, temperature="hot")
    assert bad_field.value.body["param"] == "temperature"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        _chat(client, n=99)
    with pytest.raises(openai.BadRequestError) as too_long:
        _chat(client, messages=[{"role": "user", "content": "Paris " * 600}])
    assert too_long.value.code == "context_length_exceeded"
    with pytest.raises(openai.NotFoundError):
        _chat(client, model="gpt-4")


def test_tools_on_a_model_that_cannot_call_them_return_text(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    reply = _chat(client, tools=tools, tool_choice="required").choices[0]
    assert reply.message.tool_calls is None and reply.finish_reason == "length" and reply.message.content
    chunks = [c for c in _chat(client, tools=tools, tool_choice="required", stream=True) if c.choices]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == reply.message.content
    assert len([c for c in chunks if c.choices[0].delta.content]) == 1  # held back, then sent once checked


def test_json_mode_is_a_hint_and_the_text_is_returned_as_written(client: openai.OpenAI) -> None:
    reply = _chat(client, response_format={"type": "json_object"}).choices[0]
    assert reply.finish_reason == "length" and reply.message.content  # a random model writes no JSON
    with pytest.raises(openai.BadRequestError) as unsupported:
        _chat(client, response_format={"type": "json_schema", "json_schema": {"name": "x"}})
    assert (unsupported.value.body or {})["param"].startswith("response_format")  # type: ignore[index]


def test_concurrent_requests_share_the_batch(client: openai.OpenAI) -> None:
    _chat(client, max_tokens=48)
    start = time.perf_counter()
    _chat(client, max_tokens=48)
    alone = time.perf_counter() - start
    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: _chat(client, max_tokens=48), range(8)))
    together = time.perf_counter() - start
    assert all(r.choices[0].message.content == replies[0].choices[0].message.content for r in replies)
    assert together < 0.6 * 8 * alone, (together, alone)


def test_client_disconnect_aborts_the_sequence(client: openai.OpenAI, engine: AsyncEngine) -> None:
    aborted = engine.metrics.aborted_total
    stream = _chat(client, max_tokens=480, stream=True)
    for _, _chunk in zip(range(3), stream, strict=False):
        pass
    stream.close()
    deadline = time.monotonic() + 10
    while not engine.idle and time.monotonic() < deadline:
        time.sleep(0.02)
    assert engine.idle and engine.metrics.aborted_total == aborted + 1
    assert _chat(client).choices[0].finish_reason == "length"  # and it still serves


def test_a_client_gone_before_a_plain_answer_aborts_the_sequence(server: BackgroundServer, engine: AsyncEngine) -> None:
    aborted = engine.metrics.aborted_total
    body = json.dumps({"model": MODEL, "messages": HELLO, "max_tokens": 480, "temperature": 0}).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: " +
                     str(len(body)).encode() + b"\r\n\r\n" + body)
        deadline = time.monotonic() + 10
        while engine.idle and time.monotonic() < deadline:  # generation has started
            time.sleep(0.01)
    deadline = time.monotonic() + 10
    while not engine.idle and time.monotonic() < deadline:
        time.sleep(0.02)
    assert engine.idle and engine.metrics.aborted_total == aborted + 1


def test_cli_refuses_without_token_or_with_the_wrong_key(signed_tiny: tuple[Path, Path, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    folder, bundle, _ = signed_tiny
    other = generate_private_key("ecdsa-p256")
    save_public_key(tmp_path / "other.pub.pem", other.public_key())
    policy = str(shipped_policy_path("production"))
    args = ["engine", "serve", "--model", str(folder), "--bundle", str(bundle), "--policy", policy,
            "--key", str(tmp_path / "other.pub.pem"), "--json"]
    monkeypatch.delenv("MODELGATE_ENGINE_TOKEN", raising=False)
    assert main(args) == 2 and "MODELGATE_ENGINE_TOKEN" in capsys.readouterr().out
    monkeypatch.setenv("MODELGATE_ENGINE_TOKEN", TOKEN)
    assert main(args) == 1
    printed = capsys.readouterr()
    assert json.loads(printed.out)["error"] == "LoadRefused" and json.loads(printed.err)["decision"] == "refused"


@pytest.mark.slow
def test_default_model_served_by_the_cli(default_model: Path, tmp_path: Path) -> None:
    model = tmp_path / default_model.name
    model.write_bytes(default_model.read_bytes())
    key = generate_private_key("ecdsa-p256")
    write_bundle(sign_model(model, KeySigner(key)).bundle, tmp_path / "bundle.json")
    save_public_key(tmp_path / "key.pub.pem", key.public_key())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    policy = str(write_simulated_tee_policy(tmp_path))
    command = [sys.executable, "-m", "modelgate", "engine", "serve", "--model", str(model), "--bundle",
               str(tmp_path / "bundle.json"), "--policy", policy, "--key", str(tmp_path / "key.pub.pem"),
               "--port", str(port), "--device", "cpu", "--slots", "4", "--max-seq-len", "1024"]
    proc = subprocess.Popen(command, env=os.environ | {"MODELGATE_ENGINE_TOKEN": TOKEN},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_for(f"http://127.0.0.1:{port}/health", proc)
        with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=TOKEN, max_retries=0) as client:
            answer = client.chat.completions.create(model=model.name, temperature=0, max_tokens=32, messages=[
                {"role": "user", "content": "What is the capital of France?"}])
            assert "Paris" in (answer.choices[0].message.content or "")
            tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city.",
                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                     "required": ["city"]}}}]
            reply = client.chat.completions.create(model=model.name, temperature=0, max_tokens=64, tools=tools,
                                                   messages=[{"role": "user", "content": "Weather in Paris?"}])
            choice = reply.choices[0]
            if choice.message.tool_calls:
                assert choice.finish_reason == "tool_calls"
                call = choice.message.tool_calls[0]
                assert call.function.name == "get_weather"
                assert isinstance(json.loads(call.function.arguments)["city"], str)
            else:
                assert choice.finish_reason in ("stop", "length") and choice.message.content
    finally:
        proc.terminate()
        proc.wait(30)
        assert proc.stdout is not None
        proc.stdout.close()


def _wait_for(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            assert proc.stdout is not None
            pytest.fail(f"engine serve exited {proc.returncode}: {proc.stdout.read().decode()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.5)
    pytest.fail("engine serve did not come up")


def test_templates_receive_the_models_special_token_strings(loaded: LoadedModel, engine: AsyncEngine) -> None:
    """Llama and Mistral templates write {{ bos_token }} / {{ eos_token }} themselves; they must get the real ones."""
    template = ChatTemplate("{% for m in messages %}{{ m['content'] }}{{ eos_token }}{% endfor %}")
    app = create_app(dataclasses.replace(loaded, chat_template=template), engine, model_name=MODEL,
                     api_token=TOKEN, max_prompt_tokens=490)
    server = BackgroundServer(app)
    try:
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, max_retries=0, timeout=60) as client:
            usage = _chat(client, max_tokens=1).usage
    finally:
        server.stop()
    tokens = loaded.tokenizer.template_tokens
    expected = loaded.tokenizer.encode_chat(template.render(HELLO, **tokens).segments)
    assert usage is not None and usage.prompt_tokens == len(expected)
    assert expected[-1] == loaded.tokenizer.special_tokens[tokens["eos_token"]]  # the model declares only eos
