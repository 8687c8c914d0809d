"""Audit writer throughput: group commit against one commit per record, on SQLite, in the same run.

    python bench/audit_writer.py [--seconds 5] [--synchronous FULL|NORMAL] [--dir DIR] [--json]

For concurrency 1 and 16, each mode records requests for ``--seconds`` through ``record_request`` (the
call the proxy awaits before forwarding) and reports records/s, commits/s and the p50/p99 latency of
the call. The baseline is the same writer with ``max_batch=1``: every record its own commit and fsync.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gateway.audit.writer import AuditWriter, WriterConfig
from gateway.events import RequestEvent

_BODY = b'{"model": "smol", "messages": [{"role": "user", "content": "What is the capital of France?"}]}'


def _event(n: int) -> RequestEvent:
    return RequestEvent(request_id=f"bench-{n}", agent="bench", session=f"s{n % 50}", protocol="openai.chat",
                        direction="reverse", method="POST", scheme="http", host="127.0.0.1", port=8000,
                        path="/v1/chat/completions", model="smol")


def run(folder: Path, *, batch: int, concurrency: int, seconds: float, synchronous: str) -> dict[str, Any]:
    home = folder / f"b{batch}-c{concurrency}"
    config = WriterConfig(max_batch=batch, synchronous=synchronous)  # type: ignore[arg-type]
    writer = AuditWriter.open(f"sqlite:///{home / 'audit.db'}", home=home, config=config)
    latencies: list[float] = []
    counter = iter(range(10**9))

    async def worker(deadline: float) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await writer.record_request(_event(next(counter)), body=_BODY,
                                        headers=[("Authorization", "Bearer mgk_0123456789abcdefghijklmnop")])
            latencies.append(time.perf_counter() - started)

    async def main() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(worker(started + seconds) for _ in range(concurrency)))
        return time.perf_counter() - started

    commits_before = writer.stats.commits
    elapsed = asyncio.run(main())
    commits = writer.stats.commits - commits_before
    writer.close()
    latencies.sort()
    return {
        "batch": batch, "concurrency": concurrency, "records": len(latencies),
        "records_per_s": round(len(latencies) / elapsed, 1), "commits_per_s": round(commits / elapsed, 1),
        "records_per_commit": round(len(latencies) / max(commits, 1), 2),
        "p50_ms": round(statistics.median(latencies) * 1e3, 3),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL")
    parser.add_argument("--dir", type=Path, help="Folder for the databases (default: a temporary one).")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        results = [run(Path(tmp), batch=batch, concurrency=c, seconds=args.seconds, synchronous=args.synchronous)
                   for c in (1, 16) for batch in (512, 1)]
    by = {(r["batch"], r["concurrency"]): r for r in results}
    ratios = {f"c{c}": round(by[(512, c)]["records_per_s"] / by[(1, c)]["records_per_s"], 2) for c in (1, 16)}
    if args.json:
        print(json.dumps({"synchronous": args.synchronous, "results": results, "group_vs_baseline": ratios},
                         indent=2))
        return 0
    print(f"SQLite, synchronous={args.synchronous}, {args.seconds:g}s per run")
    print(f"{'mode':>14} {'conc':>4} {'records/s':>10} {'commits/s':>10} {'rec/commit':>10} {'p50 ms':>8} "
          f"{'p99 ms':>8}")
    for r in results:
        mode = "group commit" if r["batch"] > 1 else "commit/record"
        print(f"{mode:>14} {r['concurrency']:>4} {r['records_per_s']:>10} {r['commits_per_s']:>10} "
              f"{r['records_per_commit']:>10} {r['p50_ms']:>8} {r['p99_ms']:>8}")
    print("group commit / one commit per record, records/s: "
          + ", ".join(f"concurrency {k[1:]}: {v}x" for k, v in ratios.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
