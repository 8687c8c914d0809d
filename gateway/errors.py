"""Errors of the gateway.

    ModelgateError (policies.errors)
    └── GatewayError                exit 2: the gateway cannot do what was asked
        ├── ProtocolError           a body, header or stream that cannot be understood
        │   ├── SSEError            a server-sent event stream that is malformed or has an oversized event
        │   └── SessionHeaderError  an X-Modelgate-Session header that is too long or has unsafe characters
        ├── AuditError              exit 2: the audit database or its state folder is unusable
        │   │                       (bad URL, unreadable key, a state folder bound to another database)
        │   ├── AuditUnavailable    the audit database cannot be written now: the proxy answers 503
        │   └── AuditTampered       exit 1: the log does not verify (modified, deleted, inserted, reordered,
        │                           truncated records, a bad signature, an index that disagrees with the chain)
        ├── AgentError              exit 2: an agent name that is unknown, taken or malformed
        ├── EngineRefused           exit 1: the engine behind the gateway refused its model, or its attestation
        │                           does not hold under the gateway's policy
        ├── DetectionError          an approval or review decision that cannot be carried out as asked
        │   ├── ToolNotPinned       approving an MCP tool the pin store has never seen
        │   └── CallNotHeld         deciding a held call that was never held
        ├── DetectorError           a detector that cannot start (a missing or malformed model file): a gateway
        │                           with a broken detector does not start
        └── AdminError              exit 2: the admin listener or its credentials cannot be used as configured
            └── AccessDenied        a request to the admin listener without a valid credential, session or
                                    CSRF token: answered 401 or 403, never served

Parsers raise ``ProtocolError``; the front door (``gateway.protocols``) turns it into an event's
``parse_error`` or ``error`` so that nothing is lost and the policy decides, not an exception handler.
``AuditUnavailable`` is the one the proxy catches on every request: nothing passes unrecorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from policies.errors import ModelgateError

if TYPE_CHECKING:
    from gateway.audit.verify import Problem

__all__ = [
    "AccessDenied",
    "AdminError",
    "AgentError",
    "AuditError",
    "AuditTampered",
    "AuditUnavailable",
    "CallNotHeld",
    "DetectionError",
    "DetectorError",
    "EngineRefused",
    "GatewayError",
    "ProtocolError",
    "SSEError",
    "SessionHeaderError",
    "ToolNotPinned",
]


class GatewayError(ModelgateError):
    """The gateway could not complete the request."""


class ProtocolError(GatewayError):
    """Traffic that does not follow the protocol it claims (or that the gateway refuses to guess about)."""


class SSEError(ProtocolError):
    """A server-sent event stream that cannot be decoded."""


class SessionHeaderError(ProtocolError):
    """A client-chosen session id that is not a short, safe token."""


class AuditError(GatewayError):
    """The audit database or the gateway's audit state cannot be used as configured."""


class AuditUnavailable(AuditError):
    """A record could not be committed (database down, read-only, full, too slow): fail closed."""


class AuditTampered(AuditError):
    """Verification found records that are not the ones the gateway wrote. ``problems[0]`` is the first."""

    exit_code = 1

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{self.problems[0]}{more}")

    def __reduce__(self) -> tuple[type[AuditTampered], tuple[tuple[Problem, ...]]]:
        return AuditTampered, (self.problems,)  # to the gateway from its audit writer process


class AgentError(GatewayError):
    """An agent cannot be added, found or revoked as asked."""


class EngineRefused(GatewayError):
    """The engine would not load its model, or the gateway does not accept the engine's attestation."""

    exit_code = 1


class DetectionError(GatewayError):
    """An approval or review decision (approve, reject a quarantined tool or a held call) that cannot be carried
    out."""


class ToolNotPinned(DetectionError):
    """Approving an MCP tool that was never seen: there is nothing to approve."""


class CallNotHeld(DetectionError):
    """Deciding a held call by a number that no held call has: there is nothing to decide."""


class DetectorError(GatewayError):
    """A detector cannot be built (its model file is missing or malformed)."""


class AdminError(GatewayError):
    """The admin listener cannot start, or its credential files are unsafe."""


class AccessDenied(AdminError):
    """Refused by the admin listener; ``status`` is 401 (who are you?) or 403 (not this way)."""

    def __init__(self, reason: str, *, status: int = 401) -> None:
        self.status = status
        super().__init__(reason)
