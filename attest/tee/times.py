"""The times at which evidence, certificates and collateral are judged: always given, never read.

Certificates and collateral expire, and real collateral is not always consistent in time (a TCB-signing
certificate that expired before the CRL it vouches for was issued), so each piece may be judged at its
own time. Verifiers ask for a time by the collateral's name and get the override or the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

from attest.errors import AttestError

__all__ = ["AppraisalTimes", "parse_time"]


@dataclass(frozen=True, slots=True)
class AppraisalTimes:
    """``at`` for everything, except the collateral named in ``overrides`` (e.g. ``tcb_info``)."""

    at: datetime
    overrides: Mapping[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, when in {"at": self.at, **self.overrides}.items():
            if when.tzinfo is None:
                raise AttestError(f"the verification time for {name} must be timezone-aware")
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))

    def of(self, collateral: str) -> datetime:
        """The time at which ``collateral`` is judged."""
        return self.overrides.get(collateral, self.at)


def parse_time(value: str, what: str = "--at") -> datetime:
    """A time given on the command line: ISO 8601 (UTC unless it says otherwise), or ``now`` for the clock."""
    if value == "now":
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise AttestError(f"{what} {value!r} is not an ISO 8601 time (e.g. 2026-01-31T12:00:00Z) or 'now'") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
