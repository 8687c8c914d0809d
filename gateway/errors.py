"""Errors of the gateway.

    ModelgateError (policies.errors)
    └── GatewayError                exit 2: the gateway cannot do what was asked
        └── DetectionError          a detection request that cannot be honoured
            └── ToolNotPinned       approving an MCP tool the pin store has never seen

Detectors never raise to the proxy: the detection pipeline turns a detector's exception into an error
finding. These errors are for the operator's calls (approving a tool, building a pipeline).
"""

from __future__ import annotations

from policies.errors import ModelgateError

__all__ = ["DetectionError", "GatewayError", "ToolNotPinned"]


class GatewayError(ModelgateError):
    """The gateway could not complete the request."""


class DetectionError(GatewayError):
    """A detection operation that cannot be carried out as asked."""


class ToolNotPinned(DetectionError):
    """There is no pin for this (server, tool): nothing to approve."""
