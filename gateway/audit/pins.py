"""MCP tool pins in the audit database: a ``ToolPinStore`` that survives restarts and is shared by gateways.

The detector (``gateway.detect.mcp_pinning``) reads and writes pins through this store; the review
screens and ``modelgate tools`` read its queue and record decisions. Every call is its own short
transaction and reads the database, so a tool quarantined by one gateway is refused by all of them
at their next call, and an approval anywhere takes effect everywhere at once. A database that cannot
be read raises ``AuditUnavailable``: the detection pipeline turns that into an error finding, and the
policy's ``on_error`` decides (block, in production).

A reviewer's rejection keeps the tool quarantined and takes it out of the queue; the same definition
listed again stays rejected, and a different one is queued again.

    >>> from gateway.audit import open_database                                 # doctest: +SKIP
    >>> store = DatabasePinStore(open_database())                               # doctest: +SKIP
    >>> [(r.pin.server, r.pin.tool, r.rejected) for r in store.quarantined()]   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.audit.db import AuditDatabase, guarded_session
from gateway.audit.models import ToolPinRow
from gateway.detect.mcp_pinning import ToolPin
from gateway.errors import AuditUnavailable, DetectionError, ToolNotPinned
from gateway.events import ToolSpec

__all__ = ["DatabasePinStore", "PinReview", "pin_key"]


@dataclass(frozen=True, slots=True)
class PinReview:
    """A quarantined tool as the review queue shows it."""

    pin: ToolPin
    since: datetime
    """When it was quarantined (or its observed definition last changed)."""
    rejected: bool
    """A reviewer rejected its observed definition: calls stay refused, and it is not in the queue."""

    def to_json(self) -> dict[str, object]:
        pin = self.pin
        return {"server": pin.server, "tool": pin.tool, "status": pin.status, "digest": pin.digest,
                "observed_digest": pin.observed_digest, "reason": pin.reason, "since": self.since.isoformat(),
                "rejected": self.rejected}


def pin_key(server: str, tool: str) -> str:
    """The row key of (server, tool): SHA-256 of their JSON pair, so no separator can be forged."""
    return hashlib.sha256(json.dumps([server, tool], ensure_ascii=False).encode("utf-8", "surrogatepass")).hexdigest()


class DatabasePinStore:
    """``ToolPinStore`` on an open audit database (the same one the gateway records to, or any other)."""

    def __init__(self, db: AuditDatabase, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._db = db
        self._clock = clock

    # -- ToolPinStore ----------------------------------------------------------------------------

    def get(self, server: str, tool: str) -> ToolPin | None:
        with self._session() as session:
            row = session.get(ToolPinRow, pin_key(server, tool))
            return _pin(row) if row is not None else None

    def put(self, pin: ToolPin) -> None:
        """Insert or replace; a concurrent insert by another gateway is retried as an update."""
        for attempt in (1, 2):
            try:
                with self._session() as session, session.begin():
                    self._write(session, pin)
                return
            except IntegrityError:
                if attempt == 2:
                    raise AuditUnavailable(f"cannot store the pin of {pin.tool!r} of {pin.server}") from None

    def pins(self, server: str | None = None) -> list[ToolPin]:
        with self._session() as session:
            query = select(ToolPinRow).order_by(ToolPinRow.server, ToolPinRow.tool)
            rows = session.scalars(query if server is None else query.where(ToolPinRow.server == server))
            return [_pin(row) for row in rows]

    # -- review -----------------------------------------------------------------------------------

    def quarantined(self) -> list[PinReview]:
        """Every quarantined tool, the most recently quarantined first (rejected ones included)."""
        with self._session() as session:
            rows = session.scalars(select(ToolPinRow).where(ToolPinRow.status == "quarantined")
                                   .order_by(ToolPinRow.updated_at.desc(), ToolPinRow.key))
            return [_review(row) for row in rows]

    def review(self, server: str, tool: str) -> PinReview:
        """One tool's pin with its review state; ToolNotPinned if there is none."""
        with self._session() as session:
            row = session.get(ToolPinRow, pin_key(server, tool))
            if row is None:
                raise ToolNotPinned(f"no pin for tool {tool!r} of MCP server {server!r}")
            return _review(row)

    def reject(self, server: str, tool: str, observed_digest: str) -> PinReview:
        """Keep the tool quarantined with ``observed_digest`` marked rejected.

        DetectionError if it is not quarantined or its observed definition is no longer that one.
        """
        with self._session() as session, session.begin():
            row = session.get(ToolPinRow, pin_key(server, tool), with_for_update=True)
            if row is None:
                raise ToolNotPinned(f"no pin for tool {tool!r} of MCP server {server!r}")
            if row.status != "quarantined" or row.observed_digest != observed_digest:
                raise DetectionError(f"{tool!r} of {server} is no longer quarantined with definition "
                                     f"{observed_digest[:16]}…: review it again")
            row.rejected_digest = observed_digest
            return _review(row)

    # -- internals --------------------------------------------------------------------------------

    def _session(self) -> AbstractContextManager[Session]:
        return guarded_session(self._db, "the tool pin store", passing=(IntegrityError,))

    def _write(self, session: Session, pin: ToolPin) -> None:
        key = pin_key(pin.server, pin.tool)
        row = session.get(ToolPinRow, key, with_for_update=True)
        now = self._clock()
        if row is None:
            row = ToolPinRow(key=key, server=pin.server, tool=pin.tool, updated_at=now)
            session.add(row)
        elif (row.status, row.observed_digest) != (pin.status, pin.observed_digest):
            row.updated_at = now
        still_rejected = pin.status == "quarantined" and pin.observed_digest == row.rejected_digest
        row.status, row.digest, row.description = pin.status, pin.digest, pin.description
        row.input_schema = json.dumps(pin.input_schema, sort_keys=True, default=str)
        row.pinned_at = datetime.fromtimestamp(pin.pinned_at, UTC)
        row.observed = pin.observed.model_dump_json() if pin.observed is not None else None
        row.observed_digest, row.reason = pin.observed_digest, pin.reason
        row.rejected_digest = row.rejected_digest if still_rejected else None


def _pin(row: ToolPinRow) -> ToolPin:
    observed = ToolSpec.model_validate_json(row.observed) if row.observed is not None else None
    status = "pinned" if row.status == "pinned" else "quarantined"  # an unknown status refuses calls
    return ToolPin(row.server, row.tool, row.digest, row.description, json.loads(row.input_schema),
                   row.pinned_at.timestamp(), status, observed, row.observed_digest, row.reason)


def _review(row: ToolPinRow) -> PinReview:
    return PinReview(_pin(row), row.updated_at, row.rejected_digest is not None
                     and row.rejected_digest == row.observed_digest)
