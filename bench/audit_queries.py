"""Review-screen queries on a large SQLite audit log: p50/p95 per page, against a 200 ms p95 target.

    python bench/audit_queries.py [--requests 500000] [--db PATH] [--json]

The log is filled through the real writer (a request and a response record per request, so the
default is a 1,000,000-record log) with 50 agents, 5,000 sessions, tools, rules, blocked and alerted
requests; an existing ``--db`` is reused. Each query is run 20 times with different values.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.audit.db import open_database
from gateway.audit.models import Record, RequestIndex
from gateway.audit.query import (
    RequestFilter,
    list_requests,
    model_loads,
    request_detail,
    session_timeline,
    stats,
)
from gateway.audit.writer import AuditWriter, WriterConfig
from gateway.events import RequestEvent, ResponseEvent, ToolCall, Usage
from gateway.findings import Finding

TARGET_MS = 200
RULES = [f"policy.rule_{i}" for i in range(8)] + ["detect.injection.role_marker", "detect.secret.api_key"]
TOOLS = [f"tool_{i}" for i in range(20)]


def fill(db_path: Path, home: Path, requests: int) -> float:
    writer = AuditWriter.open(f"sqlite:///{db_path}", home=home,
                              config=WriterConfig(synchronous="NORMAL", checkpoint_every=10_000))
    rng = random.Random(7)
    counter = iter(range(requests))

    async def worker() -> None:
        for n in counter:
            roll = rng.random()
            findings = ([Finding(rule=rng.choice(RULES), action="block", reason="blocked")] if roll < 0.02 else
                        [Finding(rule=rng.choice(RULES), action="alert", reason="alerted")] if roll < 0.10 else [])
            event = RequestEvent(
                request_id=f"r{n}", agent=f"agent-{n % 50}", session=f"s{rng.randrange(5000)}",
                protocol="openai.chat" if n % 3 else "mcp", direction="reverse" if n % 3 else "forward",
                method="POST", scheme="https", host=f"host{n % 30}.example", port=443,
                path=f"/v1/chat/completions/{n % 1000}", model=f"model-{n % 5}",
                tool_call=ToolCall(name=rng.choice(TOOLS)) if n % 3 == 0 and rng.random() < 0.5 else None)
            await writer.record_request(event, findings, body=b'{"messages": [{"role": "user", "content": "hi"}]}')
            writer.record_response(ResponseEvent(
                request_id=f"r{n}", protocol=event.protocol, status=200, usage=Usage(prompt_tokens=9),
                tool_calls=(ToolCall(name=rng.choice(TOOLS)),) if rng.random() < 0.1 else ()), body=b"ok")
            if n % 50_000 == 0:
                await writer.record_model_load({"model": f"model-{n % 5}", "decision": "loaded"})

    async def run() -> None:
        await asyncio.gather(*(worker() for _ in range(256)))

    started = time.perf_counter()
    asyncio.run(run())
    writer.close()
    return time.perf_counter() - started


def timed(fn: Callable[[int], Any], reps: int = 20) -> dict[str, float]:
    times = []
    for i in range(reps):
        started = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - started) * 1e3)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(reps * 0.95) - 1], 2)}


def measure(session: Session) -> dict[str, dict[str, float]]:
    ids = list(session.scalars(select(RequestIndex.id).where(RequestIndex.id % 997 == 0)))
    t0, t1 = session.execute(select(func.min(RequestIndex.at), func.max(RequestIndex.at))).one()
    window = (t1 - t0) / 10
    rng = random.Random(1)
    sessions = [f"s{rng.randrange(5000)}" for _ in range(20)]

    def page(**filters: Any) -> Callable[[int], Any]:
        return lambda i: list_requests(session, RequestFilter(**{k: v(i) if callable(v) else v
                                                                 for k, v in filters.items()}), limit=50)

    queries: dict[str, Callable[[int], Any]] = {
        "newest page": page(),
        "deep page (keyset)": lambda i: list_requests(session, before=rng.choice(ids), limit=50),
        "agent": page(agent=lambda i: f"agent-{i}"),
        "session": page(session=lambda i: sessions[i]),
        "decision=block": page(decision="block"),
        "rule": page(rule=lambda i: RULES[i % len(RULES)]),
        "tool": page(tool=lambda i: TOOLS[i]),
        "model": page(model=lambda i: f"model-{i % 5}"),
        "host": page(host=lambda i: f"host{i}.example"),
        "time range (10% window)": page(since=lambda i: t0 + window * (i % 9),
                                        until=lambda i: t0 + window * (i % 9 + 1)),
        "agent + time range": page(agent=lambda i: f"agent-{i}", since=lambda i: t0 + window * 4,
                                   until=lambda i: t0 + window * 5),
        "block + rule": page(decision="block", rule=lambda i: RULES[i % len(RULES)]),
        "free text, common": page(text=lambda i: f"completions/{i}"),
        "free text, absent (one window)": page(text=lambda i: f"no-such-thing-{i}"),
        "detail by id": lambda i: request_detail(session, rng.choice(ids)),
        "session timeline": lambda i: session_timeline(session, sessions[i]),
        "model loads": lambda i: model_loads(session),
    }
    out = {}
    for name, fn in queries.items():
        try:
            out[name] = timed(fn)
        except Exception as exc:  # a bench reports what failed and goes on  # noqa: BLE001
            out[name] = {"error": str(exc)}  # type: ignore[dict-item]
    out["stats (whole log, not a page)"] = timed(lambda i: stats(session), reps=3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500_000)
    parser.add_argument("--db", type=Path, help="Audit database to fill (if absent) and query.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db_path = args.db or Path(tmp) / "audit.db"
        fill_s = None
        if not db_path.exists():
            fill_s = fill(db_path, db_path.parent / f"{db_path.stem}-state", args.requests)
        db = open_database(f"sqlite:///{db_path}")
        with db.sessions() as session:
            records = session.scalar(select(func.count()).select_from(Record))
            requests = session.scalar(select(func.count()).select_from(RequestIndex))
            results = measure(session)
        db.close()
    summary = {"records": records, "requests": requests, "fill_s": fill_s and round(fill_s, 1),
               "target_p95_ms": TARGET_MS, "queries": results}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    fill_text = f", filled in {fill_s:.0f}s ({records / fill_s:.0f} records/s)" if fill_s else ""
    print(f"SQLite audit log: {records:,} records, {requests:,} requests{fill_text}")
    for name, r in results.items():
        if "error" in r:
            print(f"  {name:32} ERROR {r['error']}")
            continue
        flag = "" if r["p95_ms"] < TARGET_MS or name.startswith("stats") else "  OVER TARGET"
        print(f"  {name:32} p50 {r['p50_ms']:8.2f} ms   p95 {r['p95_ms']:8.2f} ms{flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
