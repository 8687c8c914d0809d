import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.detect.base import SessionContext
from gateway.detect.pipeline import DetectionPipeline, MemorySuppressions
from gateway.events import RequestEvent, ResponseEvent, ToolCall
from gateway.findings import Finding, Severity, decide
from policies.detection import DetectionSection, Suppression
from tests.gateway.detect.helpers import call, request

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


class Fixed:
    """A detector that reports what it is told to, and remembers the order it saw events in."""

    def __init__(self, name: str = "fixed", findings: list[tuple[str, Severity, float]] | None = None) -> None:
        self.name = name
        self.findings = findings or []
        self.seen: list[str] = []

    def _report(self, label: str) -> list[Finding]:
        self.seen.append(label)
        return [Finding(rule=f"detect.{self.name}.{rule}", action="block", reason=f"{rule} seen", severity=severity,
                        score=score, source="detector") for rule, severity, score in self.findings]

    def on_request(self, event: RequestEvent, context: SessionContext) -> list[Finding]:
        return self._report(event.request_id)

    def on_response(self, event: ResponseEvent, request: RequestEvent, context: SessionContext) -> list[Finding]:
        return self._report(f"response {event.request_id}")

    def on_tool_call(self, call: ToolCall, request: RequestEvent, context: SessionContext) -> list[Finding]:
        return self._report(f"call {call.name}")


class Broken(Fixed):
    def on_request(self, event: RequestEvent, context: SessionContext) -> list[Finding]:
        raise RuntimeError("regex exploded")


def pipeline(*detectors: Any, clock: datetime = NOW, store: MemorySuppressions | None = None,
             **policy: Any) -> DetectionPipeline:
    return DetectionPipeline(list(detectors), DetectionSection.model_validate(policy), store, clock=lambda: clock)


def actions(findings: list[Finding]) -> dict[str, str]:
    return {f.rule: f.action for f in findings}


def test_severity_decides_the_action_by_default() -> None:
    found = pipeline(Fixed(findings=[("i", "info", 1), ("l", "low", 1), ("m", "medium", 1), ("h", "high", 1),
                                     ("c", "critical", 1)])).on_request(request())
    assert actions(found) == {"detect.fixed.i": "allow", "detect.fixed.l": "allow", "detect.fixed.m": "alert",
                              "detect.fixed.h": "block", "detect.fixed.c": "block"}


def test_exact_rules_beat_globs_and_longer_globs_beat_shorter_ones() -> None:
    rules = [{"rule": "detect.*", "action": "allow"}, {"rule": "detect.fixed.*", "action": "alert"},
             {"rule": "detect.fixed.exact", "action": "block"}]
    found = pipeline(Fixed(findings=[("exact", "low", 1), ("other", "high", 1)]), rules=rules).on_request(request())
    assert actions(found) == {"detect.fixed.exact": "block", "detect.fixed.other": "alert"}


def test_a_score_under_the_minimum_is_recorded_only_and_says_why() -> None:
    found = pipeline(Fixed(findings=[("weak", "high", 0.3), ("strong", "high", 0.9)]),
                     rules=[{"rule": "detect.fixed.*", "min_score": 0.5}]).on_request(request())
    assert actions(found) == {"detect.fixed.weak": "allow", "detect.fixed.strong": "block"}
    assert "under the rule's minimum 0.50" in next(f.reason for f in found if f.rule.endswith("weak"))


def test_shadow_mode_only_alerts_and_says_what_it_would_have_done() -> None:
    (finding,) = pipeline(Fixed(findings=[("h", "high", 1)]), shadow=True).on_request(request())
    assert finding.action == "alert" and "shadow mode: would block" in finding.reason


def test_a_detection_can_hold_and_shadow_mode_turns_the_hold_into_an_alert_too() -> None:
    held = {"severity_actions": {"high": "hold"}}
    assert decide(pipeline(Fixed(findings=[("h", "high", 1)]), **held).on_request(request())) == "hold"
    (finding,) = pipeline(Fixed(findings=[("h", "high", 1)]), shadow=True, **held).on_request(request())
    assert finding.action == "alert" and "shadow mode: would hold" in finding.reason


def test_shadow_agents() -> None:
    p = pipeline(Fixed(findings=[("h", "high", 1)]), shadow_agents=["canary-*"])
    assert decide(p.on_request(request(agent="canary-1"))) == "alert"
    assert decide(p.on_request(request(agent="prod-1"))) == "block"


def test_suppressions_apply_per_rule_and_agent_until_they_expire() -> None:
    suppression = {"rule": "detect.fixed.h", "agent": "bot-*", "until": (NOW + timedelta(days=1)).isoformat(),
                   "reason": "SEC-12 reviewed"}
    detector = Fixed(findings=[("h", "high", 1)])
    before = pipeline(detector, suppressions=[suppression])
    (finding,) = before.on_request(request(agent="bot-7"))
    assert finding.action == "allow" and "SEC-12 reviewed" in finding.reason and "suppressed until" in finding.reason
    assert decide(before.on_request(request(agent="human"))) == "block"
    after = pipeline(detector, suppressions=[suppression], clock=NOW + timedelta(days=2))
    assert decide(after.on_request(request(agent="bot-7"))) == "block"


def test_suppressions_added_at_run_time_expire_with_the_clock() -> None:
    now = [NOW]
    store = MemorySuppressions()
    p = DetectionPipeline([Fixed(findings=[("h", "high", 1)])], DetectionSection(), store, clock=lambda: now[0])
    store.add(Suppression(rule="detect.fixed.*", until=NOW + timedelta(hours=1), reason="incident 7"))
    assert decide(p.on_request(request())) == "allow"
    now[0] = NOW + timedelta(hours=1)
    assert decide(p.on_request(request())) == "block"
    assert store.active(now[0]) == ()


def test_a_failing_detector_is_an_error_finding_never_clean_and_the_others_still_run() -> None:
    other = Fixed("other", [("m", "medium", 1)])
    found = pipeline(Broken("broken"), other).on_request(request())
    error = next(f for f in found if f.error)
    assert error.rule == "detect.broken.error" and error.action == "alert"
    assert "RuntimeError: regex exploded" in error.reason and "on_request" in error.reason
    assert other.seen == ["r1"] and "detect.other.m" in actions(found)


def test_failing_closed_blocks_on_a_detector_error() -> None:
    assert decide(pipeline(Broken("broken"), on_error="block").on_request(request())) == "block"


def test_rule_settings_and_glob_suppressions_do_not_silence_a_broken_detector() -> None:
    glob = {"rule": "detect.broken.*", "until": "2099-01-01T00:00:00Z", "reason": "noisy"}
    p = pipeline(Broken("broken"), on_error="block", rules=[{"rule": "detect.broken.*", "action": "allow"}],
                 suppressions=[glob])
    assert decide(p.on_request(request())) == "block"
    exact = dict(glob, rule="detect.broken.error", reason="known bug 9")
    assert decide(pipeline(Broken("broken"), on_error="block", suppressions=[exact]).on_request(request())) == "allow"


@pytest.mark.parametrize("bad", [None, "finding", [1], [Finding(rule="detect.someone_else.x", action="alert",
                                                                reason="r")]])
def test_a_detector_breaking_its_contract_is_an_error(bad: object) -> None:
    class Liar(Fixed):
        def on_request(self, event: RequestEvent, context: SessionContext) -> list[Finding]:
            return bad  # type: ignore[return-value]

    (finding,) = pipeline(Liar("liar")).on_request(request())
    assert finding.error and finding.rule == "detect.liar.error"


def test_disabled_detection_and_disabled_detectors() -> None:
    assert pipeline(Fixed(findings=[("h", "high", 1)]), enabled=False).on_request(request()) == []
    p = pipeline(Fixed("a", [("h", "high", 1)]), Fixed("b", [("h", "high", 1)]), disabled=["a"])
    assert [d.name for d in p.detectors] == ["b"] and list(actions(p.on_request(request()))) == ["detect.b.h"]


def test_duplicate_detector_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        pipeline(Fixed("a"), Fixed("a"))


def test_sessions_are_kept_per_agent_and_session_in_a_bounded_lru() -> None:
    class Counting(Fixed):
        def on_request(self, event: RequestEvent, context: SessionContext) -> list[Finding]:
            context.state["n"] = context.state.get("n", 0) + 1
            self.seen.append(f"{context.agent}/{context.session}:{context.state['n']}")
            return []

    detector = Counting("count")
    p = DetectionPipeline([detector], DetectionSection(), max_sessions=2)
    for agent, session in [("a", "1"), ("a", "1"), ("b", "1"), ("a", "2"), ("a", "1")]:
        p.on_request(request(agent=agent, session=session))
    assert detector.seen == ["a/1:1", "a/1:2", "b/1:1", "a/2:1", "a/1:1"]  # a/1 was evicted by a/2
    p.forget("a", "1")
    p.on_request(request(agent="a", session="1"))
    assert detector.seen[-1] == "a/1:1"


def test_all_three_hooks_reach_the_detectors() -> None:
    detector = Fixed()
    p = pipeline(detector)
    event = request()
    p.on_request(event)
    p.on_response(ResponseEvent(request_id="r1", protocol="openai.chat", status=200), event)
    p.on_tool_call(call("send_email"), event)
    assert detector.seen == ["r1", "response r1", "call send_email"]


def test_events_of_one_session_are_judged_one_at_a_time_while_sessions_run_in_parallel() -> None:
    active: dict[str, int] = {}
    overlap: list[str] = []
    parallel = threading.Event()
    lock = threading.Lock()

    class Slow(Fixed):
        def on_request(self, event: RequestEvent, context: SessionContext) -> list[Finding]:
            with lock:
                active[context.session] = active.get(context.session, 0) + 1
                if active[context.session] > 1:
                    overlap.append(context.session)
                if sum(1 for n in active.values() if n) > 1:
                    parallel.set()
            time.sleep(0.002)
            with lock:
                active[context.session] -= 1
            return []

    p = DetectionPipeline([Slow("slow")], DetectionSection(), clock=lambda: NOW)
    threads = [threading.Thread(target=lambda s=s: [p.on_request(request(session=s)) for _ in range(20)])
               for s in ("x", "x", "y", "y")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlap == [] and parallel.is_set()
