"""The detection pipeline as the gateway runs it: every detector, the policy's rules, history from the log.

The behavioural baseline starts from what the audit log already knows of each agent (its sessions, the
tools it called and the hosts it reached, newest ``history`` requests), so a restarted gateway does not
forget who its agents are. MCP tool pins live in the ``ToolPinStore`` given (the audit database's, in
production, so that a quarantine survives restarts and is shared by every gateway).
"""

from __future__ import annotations

from sqlalchemy import select

from gateway.audit.db import AuditDatabase
from gateway.audit.models import RequestIndex
from gateway.detect.base import Detector
from gateway.detect.baseline import BaselineDetector, BaselineStore, Observation
from gateway.detect.injection import InjectionDetector
from gateway.detect.mcp_pinning import McpPinDetector, ToolPinStore
from gateway.detect.pipeline import DetectionPipeline
from gateway.detect.toolcalls import ToolCallDetector
from policies.schema import Policy

__all__ = ["build_pipeline", "history"]

HISTORY = 200_000
"""Most recent requests the baseline is seeded with at start."""


def build_pipeline(policy: Policy, db: AuditDatabase, pins: ToolPinStore, *,
                   extra: tuple[Detector, ...] = ()) -> DetectionPipeline:
    baseline = BaselineStore()
    baseline.load(history(db))
    detectors: list[Detector] = [InjectionDetector(), ToolCallDetector(), McpPinDetector(pins, policy.detection.mcp),
                                 BaselineDetector(baseline, policy.detection.baseline), *extra]
    return DetectionPipeline(detectors, policy.detection)


def history(db: AuditDatabase, limit: int = HISTORY) -> list[Observation]:
    """Past requests as the baseline sees them, oldest first: one observation per tool called, or per request."""
    query = (select(RequestIndex.agent, RequestIndex.session, RequestIndex.at, RequestIndex.tools,
                    RequestIndex.direction, RequestIndex.host, RequestIndex.request_size)
             .order_by(RequestIndex.id.desc()).limit(limit))
    with db.sessions() as session:
        rows = list(session.execute(query))
    observations: list[Observation] = []
    for agent, session_id, at, tools, direction, host, size in reversed(rows):
        outbound = direction == "forward"
        base = Observation(agent, session_id, at.timestamp(), host=host if outbound else None,
                           bytes=size if outbound else 0)
        names = tools.split() if tools else [None]
        observations += [Observation(base.agent, base.session, base.at, tool=name, host=base.host, bytes=base.bytes,
                                     request=i == 0) for i, name in enumerate(names)]
    return observations
