import pytest

from engine.errors import EngineError
from engine.sampling_params import SamplingParams
from engine.scheduler import Scheduler
from engine.sequence import FinishReason, Sequence, SequenceStatus


def _seq(n: int) -> Sequence:
    return Sequence(prompt=list(range(1, n + 1)), params=SamplingParams(max_tokens=4))


def _feed(step) -> None:
    """What the runner does: prefill chunks advance the cache; a finished prompt yields its first token."""
    for chunk in step.prefill:
        chunk.seq.cached = chunk.end
        if chunk.completes_prompt:
            chunk.seq.output.append(0)
    for seq in step.decode:
        seq.cached += 1
        seq.output.append(0)


def test_new_requests_join_between_steps_and_long_prompts_are_chunked() -> None:
    sched = Scheduler(num_slots=4, max_seq_len=4096, prefill_budget=64)
    short = _seq(10)
    sched.add(short)
    step = sched.schedule()
    assert [(c.start, c.end) for c in step.prefill] == [(0, 10)] and step.decode == ()
    _feed(step)

    long = _seq(200)
    sched.add(long)
    seen_decodes = 0
    for expected_end in (64, 128, 192, 200):
        step = sched.schedule()
        assert [(c.seq, c.end) for c in step.prefill] == [(long, expected_end)]
        assert step.decode == (short,)  # the short sequence keeps decoding while the long prompt is fed
        seen_decodes += 1
        _feed(step)
    assert seen_decodes == 4 and not long.prefilling and long.output == [0]
    assert sched.schedule().decode == (short, long)


def test_budget_is_shared_across_prompts_in_arrival_order() -> None:
    sched = Scheduler(num_slots=4, max_seq_len=4096, prefill_budget=50)
    a, b = _seq(30), _seq(30)
    sched.add(a)
    sched.add(b)
    step = sched.schedule()
    assert [(c.seq, c.start, c.end) for c in step.prefill] == [(a, 0, 30), (b, 0, 20)]


def test_slots_limit_the_batch_and_are_reused() -> None:
    sched = Scheduler(num_slots=2, max_seq_len=128)
    seqs = [_seq(3) for _ in range(3)]
    for s in seqs:
        sched.add(s)
    sched.schedule()
    assert [s.status for s in seqs] == [SequenceStatus.RUNNING, SequenceStatus.RUNNING, SequenceStatus.WAITING]
    freed = seqs[0].slot
    sched.finish(seqs[0], FinishReason.STOP)
    assert seqs[0].slot is None and seqs[0].finish_reason is FinishReason.STOP
    sched.schedule()
    assert seqs[2].slot == freed


def test_finishing_a_waiting_sequence_drops_it() -> None:
    sched = Scheduler(num_slots=1, max_seq_len=128)
    first, queued = _seq(3), _seq(3)
    sched.add(first)
    sched.add(queued)
    sched.schedule()
    sched.finish(queued, FinishReason.ABORT)
    assert queued not in sched.waiting and queued.status is SequenceStatus.FINISHED
    sched.finish(queued, FinishReason.ABORT)  # idempotent


@pytest.mark.parametrize("n", [0, 128, 1000])
def test_prompts_that_do_not_fit_are_refused(n: int) -> None:
    with pytest.raises(EngineError, match="prompt is"):
        Scheduler(num_slots=1, max_seq_len=128).add(_seq(n))


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [({"max_tokens": 0}, "max_tokens"), ({"temperature": 3.0}, "temperature"), ({"top_p": 0.0}, "top_p"),
     ({"top_k": -1}, "top_k"), ({"stop": ("",)}, "stop strings"), ({"stop": tuple("abcde")}, "stop strings")],
)
def test_sampling_params_are_validated(kwargs: dict, why: str) -> None:
    with pytest.raises(EngineError, match=why):
        SamplingParams(**kwargs)


def test_scheduler_imports_no_torch() -> None:
    import subprocess
    import sys

    code = "import sys, engine.scheduler; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
