"""The async front of the engine, driven directly: one request's failure is that request's alone."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from attest.bundle import KeySigner
from attest.keys import generate_private_key
from attest.signing import sign_model
from attest.trust import TrustAnchors
from engine.async_engine import AsyncEngine
from engine.errors import EngineError
from engine.loader import build_loaded_model
from engine.sampling_params import SamplingParams
from engine.verified_load import load_verified
from tests.builders import simulated_tee, simulated_tee_policy, tiny_chat_model


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsyncEngine]:
    folder = tiny_chat_model(tmp_path_factory.mktemp("tiny") / "tiny-chat")
    key = generate_private_key("ecdsa-p256")
    bundle = json.dumps(sign_model(folder, KeySigner(key)).bundle).encode()
    artifact = load_verified(folder, bundle, TrustAnchors(keys=(key.public_key(),)), simulated_tee_policy(),
                             **simulated_tee())
    engine = AsyncEngine.from_loaded(build_loaded_model(artifact, device="cpu"), num_slots=8, max_seq_len=512,
                                     prefill_budget=512)
    yield engine
    engine.shutdown()


def test_a_failing_request_does_not_stop_the_engine(engine: AsyncEngine) -> None:
    async def run(prompt: list[int]) -> list[int]:
        return [d.token_id async for d in engine.generate([(prompt, SamplingParams(temperature=0, max_tokens=4))])]

    async def both() -> tuple[BaseException | list[int], ...]:
        return tuple(await asyncio.gather(run(list(range(3, 600))), run([5, 6, 7]), return_exceptions=True))

    too_long, fine = asyncio.run(both())
    assert isinstance(too_long, EngineError) and "prompt" in too_long.reason
    assert isinstance(fine, list) and len(fine) == 4
