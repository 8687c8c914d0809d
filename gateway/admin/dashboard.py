"""The dashboard's numbers: requests by decision, findings per rule, blocks, holds and alerts per agent, over time.

Every figure is counted in the database over an index, and no row reaches Python: requests by decision
are one count per (decision, bucket) over the decision index (a range count, far cheaper than grouping
half a million rows by a computed bucket); findings per rule are grouped over the rule table's index,
blocks, holds and alerts per agent over the (decision, at, agent) index. Those two bucket in SQL
(``julianday`` on SQLite, ``extract(epoch)`` on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, cast, extract, func, literal_column, select
from sqlalchemy.orm import Session

from gateway.audit.models import RequestIndex, RequestRule
from gateway.errors import AuditError

__all__ = ["WINDOWS", "Dashboard", "dashboard"]

WINDOWS: dict[str, tuple[timedelta, timedelta, str]] = {
    "1h": (timedelta(hours=1), timedelta(minutes=5), "%H:%M"),
    "24h": (timedelta(hours=24), timedelta(hours=1), "%H:%M"),
    "7d": (timedelta(days=7), timedelta(hours=6), "%m-%d %Hh"),
    "30d": (timedelta(days=30), timedelta(days=1), "%m-%d"),
}
"""Window name -> (length, bucket, axis label format)."""
TOP = 6
"""Series drawn per chart; the rest are summed as "other"."""
_JULIAN_UNIX_EPOCH = 2440587.5


@dataclass(frozen=True)
class Dashboard:
    window: str
    since: datetime
    until: datetime
    buckets: list[datetime]
    label_format: str
    by_decision: dict[str, list[int]]
    by_rule: dict[str, list[int]]
    """Requests with a finding of the rule (any action), top rules first, then "other"."""
    by_agent: dict[str, list[int]]
    """Blocked and alerted requests per agent, top agents first, then "other"."""

    def total(self, decision: str | None = None) -> int:
        if decision is not None:
            return sum(self.by_decision.get(decision, ()))
        return sum(sum(v) for v in self.by_decision.values())


def dashboard(session: Session, window: str = "24h", *, now: datetime | None = None) -> Dashboard:
    """Counts over ``window`` (a key of ``WINDOWS``) ending at the bucket that holds ``now``."""
    if window not in WINDOWS:
        raise AuditError(f"window must be one of {', '.join(WINDOWS)}, not {window!r}")
    length, size, label = WINDOWS[window]
    now = now or datetime.now(UTC)
    step = size.total_seconds()
    until = datetime.fromtimestamp((now.timestamp() // step + 1) * step, UTC)
    since = until - length
    count = int(length / size)
    buckets = [since + size * i for i in range(count)]

    def bucket(column: Any) -> Any:
        return _bucket(session, column, since, step)

    at, rule_at = bucket(RequestIndex.at), bucket(RequestRule.at)
    edges = [*buckets, until]
    decisions = {}
    for decision in ("allow", "alert", "hold", "block"):  # one statement each, a range count per bucket
        seen = select(RequestIndex.id).where(RequestIndex.decision == decision, RequestIndex.at >= since,
                                             RequestIndex.at < until).limit(1)
        if session.scalar(seen) is None:  # one index probe spares a decision that never occurs (hold, often)
            decisions[decision] = [0] * count
            continue
        counts = [select(func.count()).where(RequestIndex.decision == decision, RequestIndex.at >= edges[i],
                                             RequestIndex.at < edges[i + 1]).scalar_subquery() for i in range(count)]
        decisions[decision] = [int(n) for n in session.execute(select(*counts)).one()]
    rules = _grouped(session.execute(
        select(RequestRule.rule, rule_at, func.count())
        .where(RequestRule.at >= since, RequestRule.at < until).group_by(RequestRule.rule, rule_at)), count)
    agents = _grouped(session.execute(
        select(RequestIndex.agent, at, func.count())
        .where(RequestIndex.decision.in_(("alert", "hold", "block")), RequestIndex.at >= since,
               RequestIndex.at < until)
        .group_by(RequestIndex.agent, at)), count)
    return Dashboard(window, since, until, buckets, label, decisions, rules, agents)


def _bucket(session: Session, column: Any, since: datetime, step: float) -> Any:
    """The bucket number of ``column``; constants inlined so that GROUP BY repeats the SELECT's expression."""
    if session.get_bind().dialect.name == "sqlite":
        start = literal_column(repr(since.timestamp() / 86400 + _JULIAN_UNIX_EPOCH))
        return cast((func.julianday(column) - start) * literal_column(repr(86400 / step)), Integer)
    start = literal_column(repr(since.timestamp()))
    return cast(func.floor((extract("epoch", column) - start) / literal_column(repr(step))), Integer)


def _add(values: list[int], rows: Iterable[Any], count: int) -> None:
    for index, n in rows:
        if index is not None and 0 <= index < count:
            values[index] += n


def _grouped(rows: Iterable[Any], count: int) -> dict[str, list[int]]:
    series: dict[str, list[int]] = {}
    for name, index, n in rows:
        _add(series.setdefault(str(name), [0] * count), [(index, n)], count)
    ranked = sorted(series.items(), key=lambda item: (-sum(item[1]), item[0]))
    out = dict(ranked[:TOP])
    if len(ranked) > TOP:
        out["other"] = [sum(values[i] for _, values in ranked[TOP:]) for i in range(count)]
    return out
