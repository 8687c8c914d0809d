"""Errors of the gateway.

    ModelgateError (policies.errors)
    └── GatewayError                 exit 2: the gateway cannot do what was asked
        ├── ProtocolError            a body, header or stream that cannot be understood
        │   ├── SSEError             a server-sent event stream that is malformed or has an oversized event
        │   └── SessionHeaderError   an X-Modelgate-Session header that is too long or has unsafe characters
        └── DetectorError            a detector that cannot start (a missing or malformed model file)

Parsers raise these; the front door (``gateway.protocols``) turns them into an event's ``parse_error``
or ``error`` so that nothing is lost and the policy decides, not an exception handler. A detector raises
``DetectorError`` only when it is built, so a gateway with a broken detector does not start.
"""

from __future__ import annotations

from policies.errors import ModelgateError

__all__ = ["DetectorError", "GatewayError", "ProtocolError", "SSEError", "SessionHeaderError"]


class GatewayError(ModelgateError):
    """The gateway could not complete the request."""


class ProtocolError(GatewayError):
    """Traffic that does not follow the protocol it claims (or that the gateway refuses to guess about)."""


class SSEError(ProtocolError):
    """A server-sent event stream that cannot be decoded."""


class SessionHeaderError(ProtocolError):
    """A client-chosen session id that is not a short, safe token."""


class DetectorError(GatewayError):
    """A detector's configuration or shipped data cannot be used; the gateway refuses to start without it."""
