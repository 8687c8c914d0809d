"""Detector ``baseline``: what an agent usually does, learned from its history, and what departs from it.

An agent's job shapes its traffic: the same few tools in the same order, the same hosts, a steady rate.
A hijacked agent departs from that even when every single call looks plausible. ``BaselineStore`` keeps,
per agent: the sessions seen, in how many of them each tool and each outbound host appeared, a Markov
chain over consecutive tool calls in a session (``^`` starts a session), requests per active minute and
outbound body sizes. The audit log feeds it with ``load`` at start and ``observe`` as traffic is recorded.

Rules (each reason says what the history was, e.g. "tool send_money never called by agent X in 412
sessions"):

    new_tool         medium (high for a sink)  a tool the agent never called
    new_host         medium  an outbound host the agent never reached
    rare_transition  low     a tool that followed the previous one with smoothed probability under
                             ``transition_probability`` (add-half smoothing over the agent's tools)
    rate_spike       medium  requests in the last minute, robust z-score over active minutes above ``spike_z``
    volume_spike     medium  an outbound body's size, robust z-score over outbound sizes above ``spike_z``

Robust z-score: (x - median) / (1.4826 x MAD), the MAD floored so that a perfectly regular history does
not make every tiny wobble infinite. An agent with fewer than ``min_sessions`` sessions is not judged.
In ``learning`` mode the detector only observes; in ``enforcing`` mode it judges, then observes what it
did not itself report (``learn=False`` leaves all learning to the audit log's feed). Sessions are
counted through a bounded recent-session window per agent, so a session seen again after it left the
window counts twice: a slight overcount on very long-lived sessions.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from statistics import median

from gateway.detect.base import SessionContext
from gateway.detect.sinks import profile_of
from gateway.events import RequestEvent, ResponseEvent, ToolCall
from gateway.findings import Finding, Severity
from policies.detection import BaselineSettings

__all__ = ["BaselineDetector", "BaselineStore", "Observation"]

START = "^"
_MAX_SESSIONS = 4096
_MAX_MINUTES = 7 * 24 * 60
_MAX_SIZES = 4096
_MAX_AGENTS = 10_000
_MIN_TRANSITION_SUPPORT = 20
_MIN_SPIKE_HISTORY = 30
_MIN_VOLUME_BYTES = 16 * 1024
_ALPHA = 0.5


@dataclass(frozen=True, slots=True)
class Observation:
    """One thing an agent did, as the baseline needs it (built from live events or audit records)."""

    agent: str
    session: str
    at: float
    """Seconds since the epoch."""
    tool: str | None = None
    host: str | None = None
    """The destination of an outbound (forward-proxy) call."""
    bytes: int = 0
    """The outbound request body's size."""
    request: bool = True
    """A request the agent sent (counted in its rate); False for a tool call a model proposed."""

    @classmethod
    def of_request(cls, event: RequestEvent, at: float) -> Observation:
        outbound = event.direction == "forward"
        return cls(event.agent, event.session, at, tool=event.tool_call.name if event.tool_call else None,
                   host=event.host if outbound else None, bytes=event.body_size if outbound else 0)

    @classmethod
    def of_tool_call(cls, call: ToolCall, request: RequestEvent, at: float) -> Observation:
        return cls(request.agent, request.session, at, tool=call.name, request=False)


@dataclass(slots=True)
class _Seen:
    tools: set[str] = field(default_factory=set)
    hosts: set[str] = field(default_factory=set)
    last_tool: str = START


@dataclass(slots=True)
class _History:
    sessions: int = 0
    recent: OrderedDict[str, _Seen] = field(default_factory=OrderedDict)
    tool_sessions: Counter[str] = field(default_factory=Counter)
    host_sessions: Counter[str] = field(default_factory=Counter)
    transitions: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    minutes: deque[list[int]] = field(default_factory=lambda: deque(maxlen=_MAX_MINUTES))
    sizes: deque[int] = field(default_factory=lambda: deque(maxlen=_MAX_SIZES))
    added: Counter[str] = field(default_factory=Counter)
    """Values appended per series ("rate", "size") since the history began."""
    stats: dict[str, tuple[float, float, int, int]] = field(default_factory=dict)
    """Cached (median, MAD, n, added) per series, recomputed after an eighth of n new values (at least 16)."""


class BaselineStore:
    """Per-agent behaviour history. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._agents: OrderedDict[str, _History] = OrderedDict()

    def observe(self, agent: str, event: Observation) -> None:
        """Add one observation to ``agent``'s history."""
        with self._lock:
            history = self._history(agent)
            seen = history.recent.get(event.session)
            if seen is None:
                seen = history.recent[event.session] = _Seen()
                history.sessions += 1
                if len(history.recent) > _MAX_SESSIONS:
                    history.recent.popitem(last=False)
            else:
                history.recent.move_to_end(event.session)
            if event.tool is not None:
                history.transitions[seen.last_tool][event.tool] += 1
                seen.last_tool = event.tool
                if event.tool not in seen.tools:
                    seen.tools.add(event.tool)
                    history.tool_sessions[event.tool] += 1
            if event.host is not None:
                if event.host not in seen.hosts:
                    seen.hosts.add(event.host)
                    history.host_sessions[event.host] += 1
                history.sizes.append(event.bytes)
                history.added["size"] += 1
            if event.request:
                minute = int(event.at // 60)
                if history.minutes and history.minutes[-1][0] == minute:
                    history.minutes[-1][1] += 1
                else:
                    history.minutes.append([minute, 1])
                    history.added["rate"] += 1

    def load(self, events: Iterable[Observation]) -> int:
        """Replay past observations (oldest first); returns how many were read."""
        count = 0
        for event in events:
            self.observe(event.agent, event)
            count += 1
        return count

    def sessions(self, agent: str) -> int:
        with self._lock:
            history = self._agents.get(agent)
            return history.sessions if history else 0

    def tool_sessions(self, agent: str, tool: str) -> int:
        with self._lock:
            history = self._agents.get(agent)
            return history.tool_sessions[tool] if history else 0

    def host_sessions(self, agent: str, host: str) -> int:
        with self._lock:
            history = self._agents.get(agent)
            return history.host_sessions[host] if history else 0

    def transition(self, agent: str, previous: str, tool: str) -> tuple[float, int, int]:
        """(smoothed P(tool | previous), times tool followed previous, times anything did)."""
        with self._lock:
            history = self._agents.get(agent)
            if history is None:
                return 1.0, 0, 0
            following = history.transitions.get(previous)
            support = sum(following.values()) if following else 0
            count = following[tool] if following else 0
            vocabulary = len(history.tool_sessions) + 1
            return (count + _ALPHA) / (support + _ALPHA * vocabulary), count, support

    def rate_stats(self, agent: str) -> tuple[float, float, int]:
        """(median, MAD, active minutes) of requests per active minute."""
        with self._lock:
            history = self._agents.get(agent)
            return _stats(history, "rate", lambda: [m[1] for m in history.minutes]) if history else (0.0, 0.0, 0)

    def size_stats(self, agent: str) -> tuple[float, float, int]:
        """(median, MAD, count) of outbound body sizes."""
        with self._lock:
            history = self._agents.get(agent)
            return _stats(history, "size", lambda: list(history.sizes)) if history else (0.0, 0.0, 0)

    def _history(self, agent: str) -> _History:
        history = self._agents.get(agent)
        if history is None:
            history = self._agents[agent] = _History()
            if len(self._agents) > _MAX_AGENTS:
                self._agents.popitem(last=False)
        else:
            self._agents.move_to_end(agent)
        return history


def _stats(history: _History, series: str, values: Callable[[], list[int]]) -> tuple[float, float, int]:
    """Median and MAD of a series, cached: the hot path must not sort a week of minutes per request."""
    added = history.added[series]
    cached = history.stats.get(series)
    if cached is not None and added - cached[3] < max(16, cached[2] // 8):
        return cached[:3]
    data = values()
    if not data:
        return 0.0, 0.0, 0
    center = float(median(data))
    spread = float(median(abs(v - center) for v in data))
    history.stats[series] = (center, spread, len(data), added)
    return center, spread, len(data)


def _robust_z(value: float, center: float, spread: float, floor: float) -> float:
    return (value - center) / (1.4826 * max(spread, floor))


@dataclass(slots=True)
class _SessionState:
    last_tool: str = START
    reported: set[str] = field(default_factory=set)


class BaselineDetector:
    """Judges an agent's events against its own history."""

    name = "baseline"

    def __init__(self, store: BaselineStore, settings: BaselineSettings | None = None, *, learn: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._settings = settings or BaselineSettings()
        self._learn = learn
        self._clock = clock
        self._lock = threading.Lock()
        self._live: dict[str, deque[float]] = {}
        self._spike_reported: dict[str, int] = {}

    def on_request(self, event: RequestEvent, context: SessionContext) -> list[Finding]:
        now = self._clock()
        observation = Observation.of_request(event, now)
        state: _SessionState = context.of(self.name, _SessionState)
        rate = self._rate(event.agent, now)
        findings = self._judge(observation, state, rate) if self._enforcing(event.agent) else []
        self._after(observation, state, findings)
        return findings

    def on_response(self, event: ResponseEvent, request: RequestEvent, context: SessionContext) -> list[Finding]:
        return []

    def on_tool_call(self, call: ToolCall, request: RequestEvent, context: SessionContext) -> list[Finding]:
        observation = Observation.of_tool_call(call, request, self._clock())
        state: _SessionState = context.of(self.name, _SessionState)
        findings = self._judge(observation, state, None) if self._enforcing(request.agent) else []
        self._after(observation, state, findings)
        return findings

    def _enforcing(self, agent: str) -> bool:
        return self._settings.mode == "enforcing" and self._store.sessions(agent) >= self._settings.min_sessions

    def _after(self, observation: Observation, state: _SessionState, findings: list[Finding]) -> None:
        if observation.tool is not None:
            state.last_tool = observation.tool
        if self._learn and not findings:
            self._store.observe(observation.agent, observation)

    def _rate(self, agent: str, now: float) -> int:
        """Requests ``agent`` sent in the last 60 s, this one included."""
        with self._lock:
            window = self._live.get(agent)
            if window is None:
                window = self._live[agent] = deque(maxlen=100_000)
            window.append(now)
            while window and window[0] <= now - 60:
                window.popleft()
            return len(window)

    def _judge(self, event: Observation, state: _SessionState, rate: int | None) -> list[Finding]:
        agent, sessions = event.agent, self._store.sessions(event.agent)
        findings: list[Finding] = []
        if event.tool is not None:
            findings += self._tool(event, state, sessions)
        if event.host is not None and event.host not in state.reported:
            if self._store.host_sessions(agent, event.host) == 0:
                state.reported.add(event.host)
                findings.append(_finding("new_host", "medium", _confidence(sessions, self._settings),
                                         f"host {event.host} never reached by agent {agent} in {sessions} sessions"))
        if rate is not None:
            findings += self._spike(agent, rate, event.at)
        if event.host is not None and event.bytes >= _MIN_VOLUME_BYTES:
            center, spread, n = self._store.size_stats(agent)
            z = _robust_z(event.bytes, center, spread, max(0.1 * center, 256.0))
            if n >= _MIN_SPIKE_HISTORY and z > self._settings.spike_z:
                findings.append(_finding("volume_spike", "medium", min(1.0, z / (2 * self._settings.spike_z)),
                                         f"{event.bytes} bytes to {event.host}; agent {agent}'s outbound bodies "
                                         f"have a median of {center:.0f} (robust z {z:.1f} over {n})"))
        return findings

    def _tool(self, event: Observation, state: _SessionState, sessions: int) -> list[Finding]:
        tool, agent = event.tool or "", event.agent
        if f"tool:{tool}" not in state.reported and self._store.tool_sessions(agent, tool) == 0:
            state.reported.add(f"tool:{tool}")
            sink = profile_of(tool, None)
            severity: Severity = "high" if sink.is_sink and sink.weight >= 0.85 else "medium"
            what = f" (a {sink.describe()} tool)" if sink.is_sink else ""
            return [_finding("new_tool", severity, _confidence(sessions, self._settings),
                             f"tool {tool}{what} never called by agent {agent} in {sessions} sessions")]
        probability, count, support = self._store.transition(agent, state.last_tool, tool)
        threshold = self._settings.transition_probability
        if support >= _MIN_TRANSITION_SUPPORT and probability < threshold:
            after = "the start of a session" if state.last_tool == START else state.last_tool
            return [_finding("rare_transition", "low", min(1.0, 1 - probability / threshold),
                             f"{tool} after {after}: {count} of {support} times in agent {agent}'s history "
                             f"(smoothed p={probability:.3f})")]
        return []

    def _spike(self, agent: str, rate: int, now: float) -> list[Finding]:
        minute = int(now // 60)
        if self._spike_reported.get(agent) == minute:
            return []
        center, spread, n = self._store.rate_stats(agent)
        z = _robust_z(rate, center, spread, max(0.1 * center, 1.0))
        if n < _MIN_SPIKE_HISTORY or z <= self._settings.spike_z or rate < center + 5:
            return []
        self._spike_reported[agent] = minute
        return [_finding("rate_spike", "medium", min(1.0, z / (2 * self._settings.spike_z)),
                         f"{rate} requests in the last minute; agent {agent} sends a median of {center:.0f} per "
                         f"active minute (robust z {z:.1f} over {n} minutes)")]


def _confidence(sessions: int, settings: BaselineSettings) -> float:
    """More history, more confidence that "never" means something: 0.5 at min_sessions, towards 1."""
    return min(1.0, 0.5 + 0.5 * min(1.0, (sessions - settings.min_sessions) / (4 * settings.min_sessions)))


def _finding(rule: str, severity: Severity, score: float, reason: str) -> Finding:
    action = "block" if severity in ("high", "critical") else "alert" if severity == "medium" else "allow"
    return Finding(rule=f"detect.baseline.{rule}", action=action, severity=severity, score=round(score, 3),
                   reason=reason, source="detector")
