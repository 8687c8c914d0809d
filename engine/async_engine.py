"""The bridge from asyncio to ``LLMEngine``: one thread owns the engine, requests talk to it by queue.

``LLMEngine`` is not thread-safe, and a model step must not block the event loop, so a single engine
thread does every ``add``, ``step`` and ``abort``. Requests arrive through a locked inbox; each token
goes back to its request's ``asyncio.Queue`` with ``call_soon_threadsafe``. The thread sleeps on a
condition when there is nothing to do, a failure is reported to the requests it touches and never ends
the thread, and a request whose consumer goes away is aborted so its KV slot is freed at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, fields
from typing import Literal

from engine.errors import EngineError
from engine.llm_engine import LLMEngine
from engine.loader import LoadedModel
from engine.runner import ModelRunner
from engine.sampling_params import Alternatives, SamplingParams
from engine.scheduler import Scheduler
from engine.sequence import FinishReason
from engine.sequence import Sequence as EngineSequence
from engine.tokenizer import IncrementalDecoder, Tokenizer

__all__ = ["AsyncEngine", "Delta", "EngineMetrics"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delta:
    """One generated token of one of a request's jobs, with the text it completes."""

    index: int
    """Which job of the request (a choice, or a prompt of a batch)."""
    token_id: int
    text: str
    """Newly complete text; empty while a multi-byte character or a possible stop string is held back."""
    logprob: float
    finish_reason: Literal["stop", "length"] | None
    alternatives: Alternatives = ()


@dataclass(slots=True)
class EngineMetrics:
    """Counters for ``/metrics``; written only by the engine thread, read by anyone."""

    requests_total: int = 0
    request_errors_total: int = 0
    aborted_total: int = 0
    prompt_tokens_total: int = 0
    generation_tokens_total: int = 0
    running: int = 0
    waiting: int = 0
    time_to_first_token_seconds_sum: float = 0.0
    time_to_first_token_seconds_count: int = 0
    decode_latency_seconds_sum: float = 0.0
    """Time between two tokens of one sequence."""
    decode_latency_seconds_count: int = 0

    def prometheus(self, prefix: str = "modelgate_engine") -> str:
        lines = []
        for f in fields(self):
            kind = "gauge" if f.name in ("running", "waiting") else "counter"
            lines += [f"# TYPE {prefix}_{f.name} {kind}", f"{prefix}_{f.name} {getattr(self, f.name)}"]
        return "\n".join(lines) + "\n"


class _Job:
    """One sequence's text state: incremental decoding, with text that may start a stop string held back."""

    def __init__(self, tokenizer: Tokenizer, params: SamplingParams) -> None:
        self.decoder = IncrementalDecoder(tokenizer)
        self.stops = params.stop
        self.hold = max(map(len, self.stops), default=1) - 1
        self.text, self.sent = "", 0
        self.seq: EngineSequence | None = None
        self.last: float | None = None

    def advance(self, token_id: int, finished: bool) -> str:
        self.text += self.decoder.push(token_id)
        if not finished:
            ready = max(self.sent, len(self.text) - self.hold)
        else:
            self.text += self.decoder.flush()
            cuts = [i for i in (self.text.find(s) for s in self.stops) if i >= 0]
            ready = min(cuts, default=len(self.text))
        if ready <= self.sent:
            return ""
        piece, self.sent = self.text[self.sent : ready], ready
        return piece


class _Request:
    def __init__(self, jobs: Sequence[tuple[list[int], SamplingParams]], tokenizer: Tokenizer) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Delta | BaseException] = asyncio.Queue()
        self.prompts = [(list(prompt), params) for prompt, params in jobs]
        self.jobs = [_Job(tokenizer, params) for _, params in jobs]
        self.submitted = time.perf_counter()

    def deliver(self, item: Delta | BaseException) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is left to tell
            pass


_Command = tuple[Literal["add", "abort"], _Request]


class AsyncEngine:
    """Owns the engine thread. ``generate`` is the only way in; leaving its iteration early aborts."""

    def __init__(self, engine: LLMEngine, tokenizer: Tokenizer) -> None:
        self._engine, self._tokenizer = engine, tokenizer
        self.metrics = EngineMetrics()
        self._cond = threading.Condition()
        self._inbox: list[_Command] = []
        self._owners: dict[int, tuple[_Request, int]] = {}  # seq_id -> request, job index
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="modelgate-engine", daemon=True)
        self._thread.start()

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, *, num_slots: int = 8, max_seq_len: int = 2048,
                    prefill_budget: int = 256) -> AsyncEngine:
        """An engine for ``loaded``, its context capped at the model's own."""
        max_seq_len = min(max_seq_len, loaded.config.max_position_embeddings)
        runner = ModelRunner(loaded.model, loaded.config, num_slots=num_slots, max_seq_len=max_seq_len,
                             device=loaded.device, dtype=loaded.dtype)
        tokenizer = loaded.tokenizer
        engine = LLMEngine(runner, Scheduler(num_slots, max_seq_len, prefill_budget),
                           eos_ids=tokenizer.eos_token_ids, detokenize=tokenizer.decode)
        return cls(engine, tokenizer)

    @property
    def max_seq_len(self) -> int:
        return self._engine.scheduler.max_seq_len

    @property
    def idle(self) -> bool:
        """No sequence is waiting or running, and no request is being submitted."""
        with self._cond:
            return not self._inbox and not self._owners

    async def generate(self, jobs: Sequence[tuple[list[int], SamplingParams]]) -> AsyncIterator[Delta]:
        """Run every ``(prompt, params)`` job together; yields their tokens as they come, interleaved."""
        request = _Request(jobs, self._tokenizer)
        self._submit(("add", request))
        remaining = len(request.jobs)
        try:
            while remaining:
                item = await request.queue.get()
                if isinstance(item, BaseException):
                    raise item
                remaining -= item.finish_reason is not None
                yield item
        finally:
            if remaining:
                self._submit(("abort", request))

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the thread after its current step; requests still running get an EngineError."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)

    def _submit(self, command: _Command) -> None:
        with self._cond:
            if self._stopping:
                if command[0] == "abort":  # the shutdown ends every sequence anyway
                    return
                raise EngineError("the engine is shutting down")
            self._inbox.append(command)
            self._cond.notify()

    # Everything below runs on the engine thread only.

    def _run(self) -> None:
        while True:
            with self._cond:  # commands are cheap bookkeeping: applied under the lock, ``idle`` never lies
                while not self._inbox and not self._engine.has_work and not self._stopping:
                    self._cond.wait()
                for kind, request in self._inbox:
                    (self._add if kind == "add" else self._abort)(request)
                self._inbox.clear()
                stopping = self._stopping
            if stopping:
                for request in {r for r, _ in self._owners.values()}:
                    self._fail(request, EngineError("the engine shut down"))
                return
            if self._engine.has_work:
                self._step()

    def _add(self, request: _Request) -> None:
        self.metrics.requests_total += 1
        try:
            for index, (job, (prompt, params)) in enumerate(zip(request.jobs, request.prompts, strict=True)):
                job.seq = self._engine.add(prompt, params)
                self._owners[job.seq.seq_id] = (request, index)
                self.metrics.prompt_tokens_total += len(prompt)
        except Exception as exc:  # a refused prompt fails this request only
            self._fail(request, exc)

    def _abort(self, request: _Request) -> None:
        for job in request.jobs:
            if job.seq is not None and self._owners.pop(job.seq.seq_id, None) is not None:
                self._engine.abort(job.seq)
                self.metrics.aborted_total += 1

    def _fail(self, request: _Request, exc: BaseException) -> None:
        self.metrics.request_errors_total += 1
        self._abort(request)
        request.deliver(exc)

    def _step(self) -> None:
        try:
            produced = self._engine.step()
        except Exception as exc:  # a failed forward: its sequences' requests fail, the thread goes on
            log.exception("engine step failed")
            for request in {r for r, _ in self._owners.values()}:
                self._fail(request, EngineError(f"generation failed: {type(exc).__name__}"))
            return
        now = time.perf_counter()
        for seq in produced:
            owner = self._owners.get(seq.seq_id)
            if owner is None:
                continue
            request, index = owner
            try:
                request.deliver(self._delta(request, index, seq, now))
            except Exception as exc:  # decoding failed: this request only
                self._fail(request, exc)
        scheduler = self._engine.scheduler
        self.metrics.running, self.metrics.waiting = len(scheduler.running), len(scheduler.waiting)

    def _delta(self, request: _Request, index: int, seq: EngineSequence, now: float) -> Delta:
        job, m = request.jobs[index], self.metrics
        if job.last is None:
            m.time_to_first_token_seconds_sum += now - request.submitted
            m.time_to_first_token_seconds_count += 1
        else:
            m.decode_latency_seconds_sum += now - job.last
            m.decode_latency_seconds_count += 1
        job.last = now
        m.generation_tokens_total += 1
        reason = seq.finish_reason
        if reason is not None:
            del self._owners[seq.seq_id]
        text = job.advance(seq.output[-1], reason is not None)
        finish = None if reason is None else ("length" if reason is FinishReason.LENGTH else "stop")
        return Delta(index, seq.output[-1], text, seq.logprobs[-1], finish, seq.alternatives[-1])
