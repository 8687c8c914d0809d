import math

import pytest
import torch

from engine.sampler import Sampler
from engine.sampling_params import SamplingParams

GREEDY = SamplingParams(temperature=0.0)


def test_greedy_is_argmax_with_its_logprob() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0], [5.0, 0.0, 0.0]])
    tokens, logprobs, _ = Sampler().sample(logits, [GREEDY, GREEDY], [1, 2])
    assert tokens == [1, 0]
    assert logprobs[0] == pytest.approx(3.0 - math.log(math.exp(0) + math.exp(3) + math.exp(1)), abs=1e-5)


def test_seeded_sampling_is_reproducible_and_independent_of_the_batch() -> None:
    torch.manual_seed(0)
    logits = torch.randn(1, 1000)
    p = SamplingParams(temperature=1.0, seed=42)
    alone = Sampler().sample(logits, [p], [7])[0][0]
    sampler = Sampler()
    draws = [sampler.sample(torch.cat([logits, torch.randn(1, 1000)]), [p, SamplingParams(seed=1)], [7, 8])[0][0]
             for _ in range(5)]
    again = Sampler()
    assert draws == [again.sample(logits, [p], [7])[0][0] for _ in range(5)]
    assert draws[0] == alone


def test_top_k_and_top_p_restrict_the_choices() -> None:
    logits = torch.tensor([[4.0, 3.9, 0.0, -1.0, -2.0]])
    sampler = Sampler()
    top_k = {sampler.sample(logits, [SamplingParams(top_k=2, seed=i)], [i])[0][0] for i in range(50)}
    assert top_k <= {0, 1} and len(top_k) == 2
    # token 0 alone holds about 52% of the mass; top_p 0.5 therefore keeps only token 0
    top_p = {sampler.sample(logits, [SamplingParams(top_p=0.5, seed=100 + i)], [100 + i])[0][0] for i in range(50)}
    assert top_p == {0}


def test_low_temperature_approaches_greedy() -> None:
    logits = torch.tensor([[1.0, 1.5, 0.2]])
    picks = {Sampler().sample(logits, [SamplingParams(temperature=0.01, seed=i)], [i])[0][0] for i in range(20)}
    assert picks == {1}


def test_top_logprobs_list_the_most_likely_tokens_for_the_rows_that_ask() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0], [5.0, 0.0, 0.0, 0.0]])
    chosen, picked, tops = Sampler().sample(logits, [SamplingParams(temperature=0.0, top_logprobs=3), GREEDY],
                                            [1, 2])
    expected = torch.log_softmax(logits[0], dim=-1)
    assert chosen[0] == 1 and [token for token, _ in tops[0]] == [1, 3, 2]
    assert [lp for _, lp in tops[0]] == pytest.approx(expected[[1, 3, 2]].tolist())
    assert tops[0][0][1] == pytest.approx(picked[0]) and tops[1] == ()
