"""Operational counters of one gateway process, exposed by the admin listener as Prometheus text.

The gatekeeper counts every request once, when its outcome is known (the final decision, the status
the agent got, the time it took), and every finding by rule and action; the audit writer times its
commits. Counters are process-local on purpose: Prometheus sums them across gateways, and a scrape
never touches the audit database for them.

    >>> metrics = GatewayMetrics()
    >>> metrics.request("openai.chat", "block", 403, 0.012, ())
    >>> "modelgate_requests_total" in metrics.render(writer=None)
    True
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.audit.writer import WriterStats
    from gateway.findings import Finding

__all__ = ["COMMIT_BUCKETS", "LATENCY_BUCKETS", "GatewayMetrics", "Histogram", "HistogramSnapshot"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Seconds from the request's arrival to its response being recorded (upstream time included)."""
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Seconds one audit transaction takes (a group commit: the time every request in it waited)."""


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    """Observations per bucket (not cumulative); one more than ``bounds``: the last is above them all."""
    total: float
    count: int


class Histogram:
    """Fixed buckets, thread-safe: observed on the writer thread or the proxy loop, read by a scrape."""

    def __init__(self, bounds: Sequence[float]) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError("histogram bounds must be increasing and unique")
        self._bounds = tuple(bounds)
        self._counts = [0] * (len(bounds) + 1)
        self._total = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        if not math.isfinite(value):
            return
        with self._lock:
            self._counts[bisect.bisect_left(self._bounds, value)] += 1
            self._total += value

    def snapshot(self) -> HistogramSnapshot:
        with self._lock:
            return HistogramSnapshot(self._bounds, tuple(self._counts), self._total, sum(self._counts))


class GatewayMetrics:
    """What the gatekeeper and ``run_gateway`` report; ``render`` writes the Prometheus exposition."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str]] = Counter()
        self._statuses: Counter[str] = Counter()
        self._detections: Counter[tuple[str, str]] = Counter()
        self._loads: Counter[str] = Counter()
        self._latency: dict[str, Histogram] = {}
        self.started = time.time()

    def request(self, protocol: str, decision: str, status: int, latency_s: float | None,
                findings: Iterable[Finding]) -> None:
        """One request whose outcome is recorded: its final decision, status and every finding about it."""
        with self._lock:
            self._requests[(protocol, decision)] += 1
            self._statuses[f"{status // 100}xx"] += 1
            for finding in findings:
                self._detections[(finding.rule, finding.action)] += 1
            histogram = self._latency.get(protocol)
            if histogram is None:
                histogram = self._latency[protocol] = Histogram(LATENCY_BUCKETS)
        if latency_s is not None:  # None: refused before the gatekeeper timed it
            histogram.observe(latency_s)

    def model_load(self, decision: str) -> None:
        with self._lock:
            self._loads[decision] += 1

    def render(self, *, writer: WriterStats | None, quarantined: int | None = None) -> str:
        """Prometheus text format 0.0.4; ``writer`` adds the audit writer's figures."""
        with self._lock:
            requests, statuses = dict(self._requests), dict(self._statuses)
            detections, loads = dict(self._detections), dict(self._loads)
            latency = {p: h.snapshot() for p, h in self._latency.items()}
        out: list[str] = []
        _family(out, "modelgate_requests_total", "counter", "Requests with a recorded outcome, by protocol and "
                "final decision.", {_labels(protocol=p, decision=d): v for (p, d), v in requests.items()})
        _family(out, "modelgate_responses_total", "counter", "Requests by the class of the status the agent got.",
                {_labels(status=s): v for s, v in statuses.items()})
        _family(out, "modelgate_detections_total", "counter", "Findings of policy rules and detectors, by rule "
                "and action.", {_labels(rule=r, action=a): v for (r, a), v in detections.items()})
        _family(out, "modelgate_model_loads_total", "counter", "Engine model loads recorded by this gateway.",
                {_labels(decision=d): v for d, v in loads.items()})
        _histogram(out, "modelgate_request_duration_seconds", "From a request's arrival to its response being "
                   "recorded, upstream time included.", {_labels(protocol=p): s for p, s in latency.items()})
        if writer is not None:
            _family(out, "modelgate_audit_records_total", "counter", "Audit records committed.",
                    {"": writer.records})
            _family(out, "modelgate_audit_commits_total", "counter", "Audit transactions committed.",
                    {"": writer.commits})
            _family(out, "modelgate_audit_failed_commits_total", "counter", "Audit transactions that failed "
                    "(their requests were refused).", {"": writer.failed_commits})
            _family(out, "modelgate_audit_queue_depth", "gauge", "Records waiting for the audit writer.",
                    {"": writer.queue_depth})
            _family(out, "modelgate_audit_pending_responses", "gauge", "Response records awaiting a retry.",
                    {"": writer.pending_responses})
            _histogram(out, "modelgate_audit_commit_duration_seconds", "Time of one audit transaction (a group "
                       "commit).", {"": writer.commit_seconds})
        if quarantined is not None:
            _family(out, "modelgate_mcp_tools_quarantined", "gauge", "MCP tools whose calls are refused until "
                    "approved.", {"": quarantined})
        _family(out, "modelgate_start_time_seconds", "gauge", "When this gateway process started (Unix time).",
                {"": round(self.started, 3)})
        return "\n".join(out) + "\n"


def _labels(**labels: str) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _family(out: list[str], name: str, kind: str, text: str, samples: Mapping[str, float]) -> None:
    out += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
    for labels, value in sorted(samples.items()):
        out.append(f"{name}{{{labels}}} {_number(value)}" if labels else f"{name} {_number(value)}")


def _histogram(out: list[str], name: str, text: str, series: Mapping[str, HistogramSnapshot]) -> None:
    out += [f"# HELP {name} {text}", f"# TYPE {name} histogram"]
    for labels, snap in sorted(series.items()):
        prefix = f"{labels}," if labels else ""
        cumulative = 0
        for bound, count in zip((*snap.bounds, math.inf), snap.counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == math.inf else repr(bound)
            out.append(f'{name}_bucket{{{prefix}le="{le}"}} {cumulative}')
        suffix = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{suffix} {snap.total!r}", f"{name}_count{suffix} {snap.count}"]
