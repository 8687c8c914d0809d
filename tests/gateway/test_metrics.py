"""Gateway metrics: the exposition parses with Prometheus's own parser, and real traffic moves the counters."""

from __future__ import annotations

import math
import time

import httpx
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from gateway.findings import Finding
from gateway.metrics import LATENCY_BUCKETS, GatewayMetrics, Histogram
from tests.gateway.test_gateway import HELLO, Stack, stack  # noqa: F401 - the real gateway fixture


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_requests_detections_and_latency_are_counted_once_each() -> None:
    metrics = GatewayMetrics()
    block = Finding(rule="policy.tool_not_allowed", action="block", reason="no")
    metrics.request("openai.chat", "block", 403, 0.02, (block, block))
    metrics.request("openai.chat", "allow", 200, 0.3, ())
    metrics.request("mcp", "block", 400, None, (block,))  # refused by the proxy: no latency to observe
    metrics.model_load("loaded")
    got = samples(metrics.render(writer=None, quarantined=2))
    assert got[("modelgate_requests_total", (("decision", "block"), ("protocol", "openai.chat")))] == 1
    assert got[("modelgate_requests_total", (("decision", "block"), ("protocol", "mcp")))] == 1
    assert got[("modelgate_detections_total", (("action", "block"), ("rule", "policy.tool_not_allowed")))] == 3
    assert got[("modelgate_responses_total", (("status", "4xx"),))] == 2
    assert got[("modelgate_model_loads_total", (("decision", "loaded"),))] == 1
    assert got[("modelgate_mcp_tools_quarantined", ())] == 2
    chat = (("protocol", "openai.chat"),)
    assert got[("modelgate_request_duration_seconds_count", chat)] == 2
    assert got[("modelgate_request_duration_seconds_sum", chat)] == pytest.approx(0.32)
    assert got[("modelgate_request_duration_seconds_bucket", (("le", "0.025"), *chat))] == 1
    assert got[("modelgate_request_duration_seconds_bucket", (("le", "+Inf"), *chat))] == 2
    assert ("modelgate_request_duration_seconds_count", (("protocol", "mcp"),)) in got  # a series, with no sample


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), max_size=50))
def test_histogram_buckets_are_cumulative_and_end_with_the_count(values: list[float]) -> None:
    histogram = Histogram(LATENCY_BUCKETS)
    for v in values:
        histogram.observe(v)
    histogram.observe(math.nan)  # ignored, never a poisoned sum
    snap = histogram.snapshot()
    assert snap.count == len(values) and snap.total == pytest.approx(sum(values))
    for bound, below in zip(snap.bounds, (sum(snap.counts[: i + 1]) for i in range(len(snap.bounds))), strict=True):
        assert below == sum(1 for v in values if v <= bound)


@given(st.text(max_size=30))
def test_any_rule_name_is_a_well_formed_label(rule: str) -> None:
    metrics = GatewayMetrics()
    metrics.request("http", "alert", 200, 0.001, (Finding(rule=rule, action="alert", reason="r"),))
    got = samples(metrics.render(writer=None))
    assert got[("modelgate_detections_total", (("action", "alert"), ("rule", rule)))] == 1


def test_bad_bounds_are_refused() -> None:
    for bounds in ((), (1.0, 1.0), (2.0, 1.0)):
        with pytest.raises(ValueError):
            Histogram(bounds)


def _scrape(running: Stack, until: float) -> dict:
    token = (running.home / "admin-token").read_text().strip()
    deadline = time.monotonic() + 10
    while True:
        text = httpx.get(f"{running.gateway.admin_url}/metrics", headers={"Authorization": f"Bearer {token}"}).text
        got = samples(text)
        if sum(v for (n, _), v in got.items() if n == "modelgate_requests_total") >= until or \
                time.monotonic() > deadline:
            return got


def test_traffic_through_the_gateway_shows_in_its_metrics(stack: Stack) -> None:  # noqa: F811
    with stack.openai() as client:
        client.chat.completions.create(model="stub-1", messages=HELLO)
        with pytest.raises(openai.PermissionDeniedError):
            client.chat.completions.create(model="gpt-4o", messages=HELLO)
    got = _scrape(stack, until=2)
    assert got[("modelgate_requests_total", (("decision", "allow"), ("protocol", "openai.chat")))] == 1
    assert got[("modelgate_requests_total", (("decision", "block"), ("protocol", "openai.chat")))] == 1
    assert got[("modelgate_detections_total", (("action", "block"), ("rule", "policy.model_not_allowed")))] == 1
    assert got[("modelgate_request_duration_seconds_count", (("protocol", "openai.chat"),))] == 2
    assert got[("modelgate_audit_records_total", ())] >= 4  # start, two requests, their responses
    assert got[("modelgate_audit_commit_duration_seconds_count", ())] >= 1
    assert got[("modelgate_audit_failed_commits_total", ())] == 0
    assert got[("modelgate_audit_queue_depth", ())] >= 0
