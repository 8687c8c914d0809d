import threading
from typing import Any

from gateway.detect.base import SessionContext
from gateway.detect.baseline import BaselineDetector, BaselineStore, Observation
from gateway.findings import Finding
from policies.detection import BaselineSettings
from tests.gateway.detect.helpers import call, http, request

AGENT = "triage-bot"
DAY = 86_400.0


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def history(sessions: int = 40, tools: tuple[str, ...] = ("read_inbox", "label_email"), host: str = "api.crm.example",
            start: float = 1_699_000_000.0) -> BaselineStore:
    """An agent that reads, labels, and calls its CRM, a few requests a minute, session after session."""
    store = BaselineStore()
    events = []
    at = start
    for s in range(sessions):
        for tool in tools:
            events.append(Observation(AGENT, f"h{s}", at, tool=tool, request=False))
            events.append(Observation(AGENT, f"h{s}", at + 1, host=host, bytes=2000 + 10 * (s % 7)))
            at += 20
        at += 600
    assert store.load(events) == len(events)
    return store


def rules(findings: list[Finding]) -> dict[str, str]:
    return {f.rule.removeprefix("detect.baseline."): f.severity for f in findings}


def detector(store: BaselineStore, clock: Clock | None = None, **settings: Any) -> BaselineDetector:
    return BaselineDetector(store, BaselineSettings(**({"min_sessions": 20} | settings)), clock=clock or Clock())


def test_a_tool_never_called_in_the_agents_history_explains_itself() -> None:
    found = detector(history()).on_tool_call(call("send_money", recipient="x", amount=1), request(agent=AGENT),
                                             SessionContext(AGENT, "new"))
    assert rules(found) == {"new_tool": "high"}  # a payment sink
    assert found[0].reason == f"tool send_money (a payment (name 'send_money': money) tool) never called by agent " \
                              f"{AGENT} in 40 sessions"
    plain = detector(history()).on_tool_call(call("archive_note"), request(agent=AGENT), SessionContext(AGENT, "n"))
    assert rules(plain) == {"new_tool": "medium"}


def test_usual_tools_in_the_usual_order_are_quiet() -> None:
    d, ctx = detector(history()), SessionContext(AGENT, "new")
    assert d.on_tool_call(call("read_inbox"), request(agent=AGENT), ctx) == []
    assert d.on_tool_call(call("label_email"), request(agent=AGENT), ctx) == []


def test_a_known_tool_out_of_its_usual_order_is_a_rare_transition() -> None:
    d, ctx = detector(history()), SessionContext(AGENT, "new")
    found = d.on_tool_call(call("label_email"), request(agent=AGENT), ctx)  # always came after read_inbox
    assert rules(found) == {"rare_transition": "low"}
    assert "label_email after the start of a session: 0 of 40 times" in found[0].reason


def test_a_new_outbound_host_once_per_session() -> None:
    d, ctx = detector(history()), SessionContext(AGENT, "new")
    found = d.on_request(http("POST", "paste.evil.example", agent=AGENT), ctx)
    assert rules(found) == {"new_host": "medium"}
    assert found[0].reason == f"host paste.evil.example never reached by agent {AGENT} in 40 sessions"
    assert d.on_request(http("POST", "paste.evil.example", agent=AGENT), ctx) == []


def test_a_burst_of_requests_is_a_rate_spike_reported_once_a_minute() -> None:
    clock = Clock()
    d, ctx = detector(history(), clock), SessionContext(AGENT, "new")
    reported = []
    for _ in range(60):
        clock.now += 0.5
        reported += d.on_request(http("GET", "api.crm.example", agent=AGENT), ctx)
    assert [f.rule for f in reported] == ["detect.baseline.rate_spike"]
    assert "requests in the last minute; agent triage-bot sends a median of 1 per active minute" in reported[0].reason


def test_an_outsized_outbound_body_is_a_volume_spike() -> None:
    d, ctx = detector(history()), SessionContext(AGENT, "new")
    assert d.on_request(http("POST", "api.crm.example", agent=AGENT, body_size=2500), ctx) == []
    found = d.on_request(http("POST", "api.crm.example", agent=AGENT, body_size=5_000_000), ctx)
    assert rules(found) == {"volume_spike": "medium"} and "5000000 bytes to api.crm.example" in found[0].reason


def test_too_little_history_judges_nothing() -> None:
    d = detector(history(sessions=5))
    assert d.on_tool_call(call("send_money"), request(agent=AGENT), SessionContext(AGENT, "n")) == []


def test_learning_mode_observes_and_reports_nothing() -> None:
    store = history()
    d = detector(store, mode="learning")
    assert d.on_tool_call(call("send_money"), request(agent=AGENT, session="n"), SessionContext(AGENT, "n")) == []
    assert store.tool_sessions(AGENT, "send_money") == 1 and store.sessions(AGENT) == 41


def test_enforcing_mode_does_not_learn_what_it_reported() -> None:
    store = history()
    d = detector(store)
    d.on_tool_call(call("send_money"), request(agent=AGENT, session="n"), SessionContext(AGENT, "n"))
    assert store.tool_sessions(AGENT, "send_money") == 0
    d.on_tool_call(call("read_inbox"), request(agent=AGENT, session="n"), SessionContext(AGENT, "n2"))
    assert store.tool_sessions(AGENT, "read_inbox") == 41


def test_without_learning_only_the_feed_teaches_it() -> None:
    store = history()
    BaselineDetector(store, BaselineSettings(min_sessions=20), learn=False).on_tool_call(
        call("read_inbox"), request(agent=AGENT, session="n"), SessionContext(AGENT, "n"))
    assert store.sessions(AGENT) == 40


def test_agents_have_separate_histories() -> None:
    found = detector(history()).on_tool_call(call("read_inbox"), request(agent="other"), SessionContext("other", "n"))
    assert found == []  # no history at all for "other": not judged


def test_observations_from_events() -> None:
    outbound = Observation.of_request(http("PUT", "files.example", agent=AGENT, body_size=10), 5.0)
    assert (outbound.host, outbound.bytes, outbound.tool, outbound.request) == ("files.example", 10, None, True)
    chat = Observation.of_request(request(agent=AGENT, body_size=99), 5.0)
    assert (chat.host, chat.bytes) == (None, 0)
    proposed = Observation.of_tool_call(call("x"), request(agent=AGENT), 5.0)
    assert (proposed.tool, proposed.request) == ("x", False)


def test_the_store_is_safe_to_feed_from_threads() -> None:
    store = BaselineStore()

    def feed(n: int) -> None:
        for i in range(500):
            store.observe(AGENT, Observation(AGENT, f"t{n}-{i % 50}", float(i), tool=f"tool{i % 3}"))

    threads = [threading.Thread(target=feed, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.sessions(AGENT) == 200
    previous = ("^", "tool0", "tool1", "tool2")
    assert sum(store.transition(AGENT, p, f"tool{k}")[1] for p in previous for k in range(3)) == 4 * 500
