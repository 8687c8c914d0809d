"""Records waiting for the writer thread, and how their waiters are woken when the commit returns.

The proxy awaits an asyncio future on its own loop; the writer thread settles a whole commit's worth
of them with one ``call_soon_threadsafe`` per loop, not one wake-up per record, and the answers of the
writer process, read on that loop, settle them there directly. Responses and start-up
records, which nobody awaits on a loop, get a ``concurrent.futures.Future``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gateway.audit.records import Entry
from gateway.errors import AuditUnavailable

__all__ = ["Committed", "Outcome", "Pending", "Row", "committed", "settle_all"]

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Committed:
    """Where a record landed: its row id and its place in the chain."""

    id: int
    seq: int
    hash: str


Outcome = Committed | BaseException


class Pending:
    """A record waiting for the writer, built (redacted, canonicalised) on the writer thread, not the loop.

    ``build`` gets the request's index row when the record is a response (None if the request is unknown).
    """

    __slots__ = ("build", "entry", "future", "kind", "loop", "request_id")

    def __init__(self, kind: str, build: Callable[[Row | None], Entry] | None, request_id: str | None = None,
                 entry: Entry | None = None, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.kind, self.build, self.request_id, self.entry, self.loop = kind, build, request_id, entry, loop
        self.future: asyncio.Future[Committed] | concurrent.futures.Future[Committed] = (
            loop.create_future() if loop is not None else concurrent.futures.Future())


def settle_all(outcomes: Iterable[tuple[Pending, Outcome]]) -> None:
    """Wake every waiter, from any thread: at once on the waiter's own loop (the writer process's answers are read
    there), else with one ``call_soon_threadsafe`` per loop, whose wake-up of that loop costs a system call each."""
    try:
        here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        here = None
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Committed], Outcome]]] = {}
    for item, outcome in outcomes:
        if item.loop is None or item.loop is here:
            _settle(item.future, outcome)
        else:
            by_loop.setdefault(item.loop, []).append((item.future, outcome))  # type: ignore[arg-type]
    for loop, group in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_group, group)
        except RuntimeError:
            pass  # the loop is closed: nobody waits any more


async def committed(item: Pending, timeout: float) -> Committed:
    """Wait for ``item`` (queued with its loop) to be settled; AuditUnavailable after ``timeout`` seconds. A timer
    on the loop is lighter than ``asyncio.wait_for``; a commit that comes later finds the future settled."""
    assert item.loop is not None
    timer = item.loop.call_later(timeout, _time_out, item.future, timeout)
    try:
        return await item.future  # type: ignore[misc]
    finally:
        timer.cancel()


def _time_out(future: asyncio.Future[Committed], timeout: float) -> None:
    if not future.done():
        future.set_exception(AuditUnavailable(f"the audit record was not committed within {timeout:g}s"))


def _settle_group(group: list[tuple[asyncio.Future[Committed], Outcome]]) -> None:
    for future, outcome in group:
        if not future.done():  # a waiter that timed out cancelled its future
            _settle(future, outcome)


def _settle(future: Any, outcome: Outcome) -> None:
    try:
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    except (concurrent.futures.InvalidStateError, asyncio.InvalidStateError):
        pass  # settled already (a build error reported once)
