"""The ``detection`` section of a policy: what the local detectors' findings do to a request.

Detectors report findings with a severity and a score; this section, not the detector, decides the
action. The defaults are the safe ones for a document that says nothing: detection is on, high and
critical findings block, medium ones alert, low and informational ones are recorded only, and a
detector that fails alerts (``on_error: block`` fails closed instead). Any of them may ``hold`` instead:
the event waits for a reviewer. Shadow mode turns every block and hold into an alert, for rolling
detection out without refusing or delaying traffic; suppressions silence one rule (for
one agent, or all) until a date, and an expired suppression silences nothing.

Rule settings are matched against rule ids (``detect.<detector>.<rule>``) with the policy glob dialect:
an exact id wins over any glob, and among globs the longest pattern (the most specific) wins, ties
going to the one written first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from policies.gateway import Action
from policies.globs import Glob

__all__ = [
    "BaselineSettings",
    "DetectionSection",
    "McpSettings",
    "RuleSetting",
    "SeverityActions",
    "Suppression",
]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must carry a time zone (e.g. 2025-07-01T00:00:00Z): a naive time means different "
                         "instants on different gateways")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SeverityActions(_Strict):
    """The action of a finding by its severity, for rules that ``rules`` does not name."""

    info: Action = "allow"
    """Context for a reviewer (e.g. a sensitive tool called after reading untrusted content)."""

    low: Action = "allow"
    """Weak evidence on its own; recorded for review and for tuning."""

    medium: Action = "alert"
    """Worth a reviewer's look; forwarded."""

    high: Action = "block"
    """Strong evidence of a hijacked agent or a dangerous argument."""

    critical: Action = "block"
    """No legitimate use (cloud metadata from a tool argument, a quarantined MCP tool)."""


class RuleSetting(_Strict):
    """Per-rule tuning: a fixed action and/or a minimum score."""

    rule: Glob
    """A rule id (``detect.toolcall.tainted_value``) or a glob over ids (``detect.baseline.*``)."""

    action: Action | None = None
    """The action of this rule's findings whatever their severity; None: by severity."""

    min_score: float | None = Field(None, ge=0.0, le=1.0)
    """Findings scoring below this are recorded only (``allow``); None: no minimum."""


class Suppression(_Strict):
    """A reviewed false positive: the rule's findings are recorded only, until ``until``."""

    rule: Glob
    """The rule id or a glob over ids. A detector-failure rule (``detect.<name>.error``) is suppressed only by
    naming it exactly: a glob written for a noisy rule must not silence a broken detector."""

    agent: Glob = "*"
    """The agent (as issued by ``modelgate agents add``) or a glob over agents."""

    until: AwareDatetime
    """When the suppression stops applying (with a time zone). Expired suppressions stay harmlessly in place."""

    reason: str = Field(min_length=1, max_length=500)
    """Why: the ticket or review that justified it; shown in every suppressed finding."""


class BaselineSettings(_Strict):
    """The per-agent behaviour baseline (detector ``baseline``)."""

    mode: Literal["learning", "enforcing"] = "enforcing"
    """learning: observe events, report nothing; enforcing: score each event against the agent's history, then
    learn it unless the baseline itself reported it. An agent with less than ``min_sessions`` sessions of
    history is not scored in either mode, so a new deployment learns before it judges."""

    min_sessions: int = Field(20, ge=1)
    """History an agent needs before its baseline is trusted to judge it."""

    transition_probability: float = Field(0.02, gt=0.0, lt=1.0)
    """A tool following the previous one with a smoothed probability below this is reported."""

    spike_z: float = Field(6.0, gt=0.0)
    """Robust z-score (median and MAD of the agent's history) above which a rate or a body size is a spike."""


class McpSettings(_Strict):
    """MCP tool pinning (detector ``mcp``): trust on first use, then any change quarantines the tool."""

    quarantine_new_tools: bool = False
    """A tool that appears on an already pinned server is quarantined too (until approved), not only flagged."""


class DetectionSection(_Strict):
    """Which detectors run, and what their findings do."""

    enabled: bool = True
    """False: no detector runs and detection adds no findings (the gateway's own rules still apply)."""

    shadow: bool = False
    """Every detector finding that would block or hold only alerts; the finding says what it would have done."""

    shadow_agents: tuple[Glob, ...] = ()
    """Agents (names or globs) in shadow mode even when ``shadow`` is off: rolling detection out agent by agent."""

    on_error: Literal["alert", "block"] = "alert"
    """What a detector failure does to the event. block fails closed: nothing passes that a detector could not
    judge. Never allow: a failure is never mistaken for "clean"."""

    severity_actions: SeverityActions = SeverityActions()
    """Actions by severity, for rules that ``rules`` does not set."""

    rules: tuple[RuleSetting, ...] = ()
    """Per-rule actions and minimum scores (exact ids first, then the longest matching glob)."""

    suppressions: tuple[Suppression, ...] = ()
    """Reviewed false positives, each with an expiry."""

    disabled: tuple[str, ...] = ()
    """Detectors (by name: ``toolcall``, ``baseline``, ``mcp``, ``injection``) that do not run."""

    baseline: BaselineSettings = BaselineSettings()
    """Settings of the behaviour baseline."""

    mcp: McpSettings = McpSettings()
    """Settings of MCP tool pinning."""
