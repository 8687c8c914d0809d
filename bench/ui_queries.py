"""Review pages through the real admin UI on a large SQLite log: p50/p95 per page, against a 200 ms p95 target.

    python bench/ui_queries.py [--requests 500000] [--db PATH] [--json]

The log is filled as ``bench/audit_queries.py`` fills it (the real writer, a request and a response
record per request: the default is a 1,000,000-record log); an existing ``--db`` is reused. The admin
listener is started on it as the gateway starts it (uvicorn on a loopback socket, the guard, a Bearer
token) and each page is fetched over HTTP 20 times with different values. The baseline, timed in the
same run, is the bare query function behind the page: the difference is what HTTP, the guard, the
rows' annotation and the template add. The dashboard covers the whole log when it was filled within
the last 24 hours (a fresh fill is); a reused older log leaves that window empty.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from audit_queries import RULES, TOOLS, fill  # bench/audit_queries.py, beside this script
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.admin.dashboard import dashboard
from gateway.admin.server import start_admin
from gateway.audit.db import AuditDatabase, open_database
from gateway.audit.holds import HeldCallStore
from gateway.audit.models import Record, RequestIndex
from gateway.audit.pins import DatabasePinStore
from gateway.audit.query import RequestFilter, list_requests, model_loads, request_detail, session_timeline
from gateway.audit.writer import AuditWriter
from gateway.metrics import GatewayMetrics

TARGET_MS = 200
REPS = 20


def timed(fn: Callable[[int], Any], reps: int = REPS) -> dict[str, float]:
    times = []
    for i in range(reps):
        started = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - started) * 1e3)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(reps * 0.95) - 1], 2)}


def pages(session: Session, db: AuditDatabase) -> dict[str, tuple[Callable[[int], str], Callable[[int], Any]]]:
    """Page name -> (its URL for run i, the bare query behind it for run i)."""
    ids = list(session.scalars(select(RequestIndex.id).where(RequestIndex.id % 997 == 0)))
    t0, t1 = session.execute(select(func.min(RequestIndex.at), func.max(RequestIndex.at))).one()
    window = (t1 - t0) / 10
    rng = random.Random(1)
    picks = [rng.choice(ids) for _ in range(REPS)]
    sessions = [f"s{rng.randrange(5000)}" for _ in range(REPS)]

    def iso(value: Any) -> str:
        return value.isoformat().replace("+00:00", "Z")

    def listing(url: Callable[[int], str], **filters: Callable[[int], Any]) -> tuple[Callable, Callable]:
        def query(i: int) -> Any:
            return list_requests(session, RequestFilter(**{k: v(i) for k, v in filters.items()}), limit=50)
        return url, query

    return {
        "newest page": listing(lambda i: "/requests"),
        "deep page (keyset)": (lambda i: f"/requests?before={picks[i]}",
                               lambda i: list_requests(session, before=picks[i], limit=50)),
        "deep page, newer (keyset)": (lambda i: f"/requests?after={picks[i]}",
                                      lambda i: list_requests(session, after=picks[i], limit=50)),
        "agent, newer page": (lambda i: f"/requests?agent=agent-{i}&after={picks[i]}",
                              lambda i: list_requests(session, RequestFilter(agent=f"agent-{i}"), after=picks[i],
                                                      limit=50)),
        "agent": listing(lambda i: f"/requests?agent=agent-{i}", agent=lambda i: f"agent-{i}"),
        "session": listing(lambda i: f"/requests?session={sessions[i]}", session=lambda i: sessions[i]),
        "decision=block": listing(lambda i: "/requests?decision=block", decision=lambda i: "block"),
        "rule": listing(lambda i: f"/requests?rule={RULES[i % len(RULES)]}", rule=lambda i: RULES[i % len(RULES)]),
        "tool": listing(lambda i: f"/requests?tool={TOOLS[i]}", tool=lambda i: TOOLS[i]),
        "model": listing(lambda i: f"/requests?model=model-{i % 5}", model=lambda i: f"model-{i % 5}"),
        "host": listing(lambda i: f"/requests?host=host{i}.example", host=lambda i: f"host{i}.example"),
        "time range (10% window)": listing(
            lambda i: f"/requests?since={iso(t0 + window * (i % 9))}&until={iso(t0 + window * (i % 9 + 1))}",
            since=lambda i: t0 + window * (i % 9), until=lambda i: t0 + window * (i % 9 + 1)),
        "agent + time range": listing(
            lambda i: f"/requests?agent=agent-{i}&since={iso(t0 + window * 4)}&until={iso(t0 + window * 5)}",
            agent=lambda i: f"agent-{i}", since=lambda i: t0 + window * 4, until=lambda i: t0 + window * 5),
        "block + rule": listing(lambda i: f"/requests?decision=block&rule={RULES[i % len(RULES)]}",
                                decision=lambda i: "block", rule=lambda i: RULES[i % len(RULES)]),
        "free text, common": listing(lambda i: f"/requests?q=completions/{i}", text=lambda i: f"completions/{i}"),
        "free text, absent (one window)": listing(lambda i: f"/requests?q=no-such-thing-{i}",
                                                  text=lambda i: f"no-such-thing-{i}"),
        "request detail": (lambda i: f"/requests/{picks[i]}", lambda i: request_detail(session, picks[i])),
        "session timeline": (lambda i: f"/session?id={sessions[i]}",
                             lambda i: session_timeline(session, sessions[i], limit=300)),
        "models": (lambda i: "/models", lambda i: model_loads(session, limit=20)),
        "dashboard, last 24h": (lambda i: "/", lambda i: dashboard(session, "24h")),
        "approvals": (lambda i: "/approvals", lambda i: (DatabasePinStore(db).quarantined(),
                                                        HeldCallStore(db).pending())),
    }


def measure(db_path: Path, state: Path) -> dict[str, dict[str, float]]:
    writer = AuditWriter.open(f"sqlite:///{db_path}", home=state)
    server = start_admin(("127.0.0.1", 0), home=state, writer=writer, metrics=GatewayMetrics())
    token = (state / "admin-token").read_text().strip()
    out: dict[str, dict[str, float]] = {}
    try:
        with writer.database.sessions() as session, httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {token}", "Accept": "text/html"},
                timeout=60) as client:
            for name, (url, query) in pages(session, writer.database).items():
                def fetch(i: int, url: Callable[[int], str] = url) -> None:
                    answer = client.get(url(i))
                    if answer.status_code != 200:
                        raise RuntimeError(f"{url(i)} answered {answer.status_code}: {answer.text[:200]}")

                fetch(0)  # warm: the first fetch of a template compiles it
                out[name] = {f"ui_{k}": v for k, v in timed(fetch).items()} | {
                    f"query_{k}": v for k, v in timed(query).items()}
    finally:
        server.stop()
        writer.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500_000)
    parser.add_argument("--db", type=Path, help="Audit database to fill (if absent) and query.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db_path = args.db or Path(tmp) / "audit.db"
        state = db_path.parent / f"{db_path.stem}-state"
        fill_s = fill(db_path, state, args.requests) if not db_path.exists() else None
        db = open_database(f"sqlite:///{db_path}")
        with db.sessions() as session:
            records = session.scalar(select(func.count()).select_from(Record))
            requests = session.scalar(select(func.count()).select_from(RequestIndex))
        db.close()
        results = measure(db_path, state)
    summary = {"records": records, "requests": requests, "fill_s": fill_s and round(fill_s, 1),
               "target_p95_ms": TARGET_MS, "pages": results}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    fill_text = f", filled in {fill_s:.0f}s" if fill_s else ""
    print(f"Admin UI on a SQLite audit log of {records:,} records, {requests:,} requests{fill_text}")
    print(f"  {'page':32} {'UI p50':>9} {'UI p95':>9}   {'query p50':>9} {'query p95':>9}   (ms; {REPS} runs each)")
    for name, r in results.items():
        flag = "" if r["ui_p95_ms"] < TARGET_MS else "  OVER TARGET"
        print(f"  {name:32} {r['ui_p50_ms']:9.2f} {r['ui_p95_ms']:9.2f}   {r['query_p50_ms']:9.2f} "
              f"{r['query_p95_ms']:9.2f}{flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
