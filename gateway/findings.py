"""What the gateway concluded about an event: findings from policy rules and detectors, and the decision.

Every rule and every detector reports the same shape, so the audit log, the error returned to a blocked
agent and the review UI show one list of reasons. The decision is the strongest action of any finding
(allow < alert < hold < block): one ``block`` blocks, and a ``hold`` waits for a reviewer unless something
blocks anyway. A detector that failed reports a finding with ``error`` set: an error is never mistaken for
"clean".
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from policies.gateway import Action

__all__ = ["ACTION_RANK", "SEVERITY_RANK", "Action", "Finding", "Severity", "decide", "stronger"]

Severity = Literal["info", "low", "medium", "high", "critical"]

ACTION_RANK: dict[str, int] = {"allow": 0, "alert": 1, "hold": 2, "block": 3}
"""Actions from weakest to strongest: the one order that decisions, records and pages rank by."""
SEVERITY_RANK: dict[str, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


class Finding(BaseModel):
    """One reason: which rule, what it saw, and what the policy says to do about it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    """A stable id, e.g. ``policy.tool_not_allowed`` or ``detect.injection.role_marker``."""
    action: Action
    reason: str
    severity: Severity = "medium"
    score: float = 1.0
    evidence: tuple[str, ...] = ()
    """The matched spans or values, as short excerpts."""
    source: Literal["policy", "detector"] = "policy"
    error: bool = False
    """The rule or detector failed; ``reason`` says how."""


def decide(findings: tuple[Finding, ...] | list[Finding]) -> Action:
    """The strongest action among ``findings``; ``allow`` when there are none."""
    if not findings:  # the common case, several times a request
        return "allow"
    return max((f.action for f in findings), key=ACTION_RANK.__getitem__)


def stronger(a: str, b: str) -> Action:
    """The stronger of two actions (decisions as recorded); KeyError for a word that is neither."""
    return a if ACTION_RANK[a] >= ACTION_RANK[b] else b  # type: ignore[return-value]
