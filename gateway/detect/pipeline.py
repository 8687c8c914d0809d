"""The detection pipeline: every detector on every event, in session order, and the policy on the findings.

The proxy calls one of three hooks per event from its worker threads. The pipeline finds the event's
session (a bounded LRU of ``SessionContext`` keyed by agent and session: the least recently used
session is forgotten first), runs every enabled detector under that session's lock, so that the events
of one session are judged one at a time and in the order they arrive, and turns each finding's
severity into an action with the ``detection`` policy section:

1. an error finding (a detector raised, or broke its contract) takes ``on_error``; it is never "clean";
2. otherwise the rule's setting (exact id, else the longest matching glob), else ``severity_actions``;
   a score under the rule's ``min_score`` is recorded only (``allow``);
3. an active suppression for the rule and the agent records it only, and says so; an expired one does
   nothing (time comes from the injectable ``clock``);
4. shadow mode (all agents, or those in ``shadow_agents``) turns block and hold into alert, and says so.

Suppressions come from the policy and from a ``SuppressionStore`` (reviewers add them at run time; the
in-memory store here, the audit database in production).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from gateway.detect.base import Detector, SessionContext
from gateway.events import RequestEvent, ResponseEvent, ToolCall
from gateway.findings import Action, Finding
from policies.detection import DetectionSection, RuleSetting, Suppression
from policies.globs import glob_matches, is_glob

__all__ = ["DetectionPipeline", "MemorySuppressions", "SuppressionStore"]

_MAX_REASON = 500


class SuppressionStore(Protocol):
    """Suppressions added at run time (by a reviewer), beside those written in the policy."""

    def active(self, now: datetime) -> Sequence[Suppression]:
        """The suppressions that have not expired at ``now``."""
        ...


class MemorySuppressions:
    """A process-local ``SuppressionStore``."""

    def __init__(self, suppressions: Sequence[Suppression] = ()) -> None:
        self._lock = threading.Lock()
        self._items = list(suppressions)

    def add(self, suppression: Suppression) -> None:
        with self._lock:
            self._items.append(suppression)

    def active(self, now: datetime) -> Sequence[Suppression]:
        with self._lock:
            self._items = [s for s in self._items if s.until > now]
            return tuple(self._items)


@dataclass(slots=True)
class _Session:
    context: SessionContext
    lock: threading.Lock = field(default_factory=threading.Lock)


class DetectionPipeline:
    """Runs detectors on events and decides what their findings do."""

    def __init__(self, detectors: Sequence[Detector], policy: DetectionSection, store: SuppressionStore | None = None,
                 *, max_sessions: int = 4096, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        names = [d.name for d in detectors]
        if len(set(names)) != len(names):
            raise ValueError(f"detector names must be unique: {names}")
        self._detectors = tuple(d for d in detectors if d.name not in policy.disabled)
        self._policy = policy
        self._store = store
        self._clock = clock
        self._max_sessions = max_sessions
        self._sessions: OrderedDict[tuple[str, str], _Session] = OrderedDict()
        self._lock = threading.Lock()
        self._settings: dict[str, RuleSetting | None] = {}

    @property
    def detectors(self) -> tuple[Detector, ...]:
        """The detectors that run (the policy's ``disabled`` ones left out)."""
        return self._detectors

    def on_request(self, event: RequestEvent) -> list[Finding]:
        return self._run(event, "on_request", lambda d, c: d.on_request(event, c))

    def on_response(self, event: ResponseEvent, request: RequestEvent) -> list[Finding]:
        return self._run(request, "on_response", lambda d, c: d.on_response(event, request, c))

    def on_tool_call(self, call: ToolCall, request: RequestEvent) -> list[Finding]:
        return self._run(request, "on_tool_call", lambda d, c: d.on_tool_call(call, request, c))

    def forget(self, agent: str, session: str) -> None:
        """Drop a session's context (it ended); a later event starts a fresh one."""
        with self._lock:
            self._sessions.pop((agent, session), None)

    def _session(self, agent: str, session: str) -> _Session:
        key = (agent, session)
        with self._lock:
            found = self._sessions.get(key)
            if found is None:
                found = self._sessions[key] = _Session(SessionContext(agent, session))
                while len(self._sessions) > self._max_sessions:
                    self._sessions.popitem(last=False)
            else:
                self._sessions.move_to_end(key)
            return found

    def _run(self, request: RequestEvent, hook: str,
             call: Callable[[Detector, SessionContext], Any]) -> list[Finding]:
        if not self._policy.enabled or not self._detectors:
            return []
        session = self._session(request.agent, request.session)
        raw: list[Finding] = []
        with session.lock:
            for detector in self._detectors:
                try:
                    found = call(detector, session.context)
                    raw.extend(_checked(detector.name, found))
                except Exception as exc:  # a detector's failure becomes a finding; it never escapes
                    raw.append(_error(detector.name, hook, exc))
        if not raw:
            return []
        now = self._clock()
        suppressions = [*self._policy.suppressions, *(self._store.active(now) if self._store is not None else ())]
        return [self._apply(f, request.agent, now, suppressions) for f in raw]

    def _apply(self, finding: Finding, agent: str, now: datetime, suppressions: Sequence[Suppression]) -> Finding:
        notes: list[str] = []
        action: Action
        if finding.error:
            action = self._policy.on_error
        else:
            setting = self._setting(finding.rule)
            if setting is not None and setting.action is not None:
                action = setting.action
            else:
                action = getattr(self._policy.severity_actions, finding.severity)
            if setting is not None and setting.min_score is not None and finding.score < setting.min_score:
                action = "allow"
                notes.append(f"score {finding.score:.2f} under the rule's minimum {setting.min_score:.2f}")
        for suppression in suppressions:
            if suppression.until > now and _suppresses(suppression, finding, agent):
                action = "allow"
                notes.append(f"suppressed until {suppression.until.isoformat()}: {suppression.reason}")
                break
        if action in ("hold", "block") and (self._policy.shadow or any(glob_matches(g, agent)
                                                                        for g in self._policy.shadow_agents)):
            notes.append(f"shadow mode: would {action}")
            action = "alert"
        if action == finding.action and not notes:
            return finding
        reason = finding.reason + "".join(f" [{n}]" for n in notes)
        return finding.model_copy(update={"action": action, "reason": reason[:_MAX_REASON]})

    def _setting(self, rule: str) -> RuleSetting | None:
        """The rule's setting: its exact id, else the longest matching glob (the first of equals)."""
        if rule in self._settings:
            return self._settings[rule]
        exact = next((s for s in self._policy.rules if not is_glob(s.rule) and s.rule == rule), None)
        globs = [s for s in self._policy.rules if is_glob(s.rule) and glob_matches(s.rule, rule)]
        found = exact or max(globs, key=lambda s: len(s.rule), default=None)
        if len(self._settings) < 65536:
            self._settings[rule] = found
        return found


def _suppresses(suppression: Suppression, finding: Finding, agent: str) -> bool:
    if finding.error and suppression.rule != finding.rule:
        return False  # a broken detector is silenced only by naming its error rule
    return glob_matches(suppression.rule, finding.rule) and glob_matches(suppression.agent, agent)


def _checked(name: str, found: Any) -> list[Finding]:
    """A detector's findings, or an error finding if it broke the contract (wrong type, foreign rule ids)."""
    if isinstance(found, list) and not found:  # the usual answer, on every request: nothing to check
        return found
    if not isinstance(found, list) or not all(isinstance(f, Finding) for f in found):
        raise TypeError(f"returned {type(found).__name__}, not a list of findings")
    foreign = [f.rule for f in found if not f.rule.startswith(f"detect.{name}.")]
    if foreign:
        raise ValueError(f"reported rules outside detect.{name}.*: {foreign[:3]}")
    return [f if f.source == "detector" else f.model_copy(update={"source": "detector"}) for f in found]


def _error(name: str, hook: str, exc: Exception) -> Finding:
    reason = f"detector {name!r} failed in {hook}: {type(exc).__name__}: {exc}"
    return Finding(rule=f"detect.{name}.error", action="alert", reason=reason[:_MAX_REASON], severity="high",
                   score=1.0, source="detector", error=True)
