"""A byte-count progress bar for long hashing, shown only to a person at a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

__all__ = ["byte_progress"]


@contextmanager
def byte_progress(
    total: int | None, description: str, *, enabled: bool = True
) -> Iterator[Callable[[int], None] | None]:
    """Yield a thread-safe ``advance(nbytes)`` callback, or None when stderr is not a terminal or ``--json``.

    A ``total`` of None shows a bar without an end, for when the size is not known in advance.
    """
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
