"""The audit database's tables: the append-only chain, the bodies it points to, and what is derived from it.

``audit_log`` is the record of truth: one row per request, response, model load, event, checkpoint,
hash-chained per gateway instance and sealed (signed) at every commit. Nothing updates or deletes it
except ``prune``, which leaves a signed anchor. ``audit_requests`` and its tool and rule tables are a
derived index, one row per request, written with the request and completed with its response, so that
the review screens never parse JSON; ``verify`` rebuilds it from the chain and compares.

List screens page newest-first by ``(at, id)``; every filter has an index that starts with its column
and ends with ``at, id``, so a page is an index range scan whatever the filter. ``mcp_tool_pins`` and
``held_calls`` are state, not record: the MCP tools each gateway pinned or quarantined, and the calls
waiting for a reviewer (the decisions on both are events in the chain).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "AgentRow",
    "AuditInstance",
    "AuditMeta",
    "Base",
    "Body",
    "HeldCallRow",
    "PruneAnchor",
    "Record",
    "RequestIndex",
    "RequestRule",
    "RequestTool",
    "ToolPinRow",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in Python on every backend (SQLite keeps naive UTC text, PostgreSQL timestamptz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("audit times must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite makes only an INTEGER PRIMARY KEY the rowid alias that autoincrements; PostgreSQL gets a bigint.
RowId = BigInteger().with_variant(Integer(), "sqlite")

id_pk = Annotated[int, mapped_column(RowId, primary_key=True, autoincrement=True)]
timestamp = Annotated[datetime, mapped_column(UTCDateTime())]
digest = Annotated[str, mapped_column(String(64))]
instance_fk = Annotated[str, mapped_column(String(36))]
name = Annotated[str, mapped_column(String(256))]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    })
    type_annotation_map: dict[Any, Any] = {int: BigInteger(), str: String(256)}


class AuditMeta(Base):
    """Facts about the database itself: its ``database_id``, which state folders bind to."""

    __tablename__ = "audit_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AuditInstance(Base):
    """A gateway instance that writes a chain here, and the public key that seals it."""

    __tablename__ = "audit_instances"

    instance_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    public_key: Mapped[str] = mapped_column(Text)
    """PEM SubjectPublicKeyInfo; verification trusts the state folder's copy for its own instance."""
    key_id: Mapped[digest]
    created_at: Mapped[timestamp]


class Record(Base):
    """One link of an instance's chain. ``data`` is canonical JSON; ``hash`` covers every column but ``seal``."""

    __tablename__ = "audit_log"
    __table_args__ = (
        UniqueConstraint("instance_id", "seq", name="uq_audit_log_instance_seq"),
        Index("ix_audit_log_request_id", "request_id"),
        Index("ix_audit_log_kind_at", "kind", "at", "id"),
        Index("ix_audit_log_session_at", "session", "at", "id"),
    )

    id: Mapped[id_pk]
    instance_id: Mapped[instance_fk]
    seq: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    """request, response, model_load, event, checkpoint."""
    at: Mapped[timestamp]
    request_id: Mapped[str | None] = mapped_column(String(128))
    session: Mapped[str | None]
    data: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[digest]
    hash: Mapped[digest]
    seal: Mapped[str | None] = mapped_column(Text)
    """On the last record of each commit: the instance key's signature over (instance, seq, hash), base64."""


class Body(Base):
    """A request or response body after redaction and capping, stored once however often it is sent."""

    __tablename__ = "audit_bodies"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    """SHA-256 of ``content``, so that a body row checks itself."""
    content: Mapped[bytes] = mapped_column(LargeBinary)


class RequestIndex(Base):
    """The review screens' row for one request: its record's columns, completed when the response arrives."""

    __tablename__ = "audit_requests"
    __table_args__ = (
        Index("ix_audit_requests_at", "at", "id"),
        Index("ix_audit_requests_agent", "agent", "at", "id"),
        Index("ix_audit_requests_session", "session", "at", "id"),
        Index("ix_audit_requests_decision", "decision", "at", "id"),
        Index("ix_audit_requests_decision_agent", "decision", "at", "agent"),
        Index("ix_audit_requests_model", "model", "at", "id"),
        Index("ix_audit_requests_host", "host", "at", "id"),
        Index("ix_audit_requests_request_body", "request_body"),
        Index("ix_audit_requests_response_body", "response_body"),
    )

    id: Mapped[int] = mapped_column(RowId, ForeignKey("audit_log.id"), primary_key=True, autoincrement=False)
    """The request record's id."""
    request_id: Mapped[str] = mapped_column(String(128), unique=True)
    instance_id: Mapped[instance_fk]
    at: Mapped[timestamp]
    agent: Mapped[name]
    session: Mapped[name]
    direction: Mapped[str] = mapped_column(String(8))
    protocol: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(16))
    host: Mapped[name]
    path: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None]
    decision: Mapped[str] = mapped_column(String(8))
    """The stronger of the request's and the response's decisions."""
    request_decision: Mapped[str] = mapped_column(String(8))
    request_size: Mapped[int]
    request_body: Mapped[str | None] = mapped_column(String(64))
    tools: Mapped[str] = mapped_column(Text, default="")
    """Tools called (by the agent over MCP or proposed by the model), sorted, space-separated."""
    rules: Mapped[str] = mapped_column(Text, default="")
    """Rules with a finding at request or response time, sorted, space-separated."""
    response_id: Mapped[int | None] = mapped_column(RowId, ForeignKey("audit_log.id"))
    response_decision: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[int | None] = mapped_column(Integer)
    latency_us: Mapped[int | None]
    response_size: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(String(64))
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]


class RequestTool(Base):
    """One tool a request called, for the "tool" filter (``at`` repeated so a page is one index scan)."""

    __tablename__ = "audit_request_tools"
    __table_args__ = (Index("ix_audit_request_tools_tool", "tool", "at", "request_row_id"),)

    request_row_id: Mapped[int] = mapped_column(RowId, ForeignKey("audit_requests.id"), primary_key=True)
    tool: Mapped[name] = mapped_column(primary_key=True)
    at: Mapped[timestamp]


class RequestRule(Base):
    """One rule with a finding on a request, for the "rule" filter."""

    __tablename__ = "audit_request_rules"
    __table_args__ = (Index("ix_audit_request_rules_rule", "rule", "at", "request_row_id"),)

    request_row_id: Mapped[int] = mapped_column(RowId, ForeignKey("audit_requests.id"), primary_key=True)
    rule: Mapped[name] = mapped_column(primary_key=True)
    at: Mapped[timestamp]


class PruneAnchor(Base):
    """Where an instance's chain now starts after a prune, signed by the instance's key."""

    __tablename__ = "audit_prune_anchors"
    __table_args__ = (Index("ix_audit_prune_anchors_instance", "instance_id", "first_seq"),)

    id: Mapped[id_pk]
    instance_id: Mapped[instance_fk]
    first_seq: Mapped[int]
    """The first seq that remains."""
    prev_hash: Mapped[digest]
    """The hash the first remaining record links to (the last pruned record's)."""
    before: Mapped[timestamp]
    pruned: Mapped[int]
    at: Mapped[timestamp]
    signature: Mapped[str] = mapped_column(Text)


class AgentRow(Base):
    """An agent allowed through the gateway; its API key is kept only as a SHA-256."""

    __tablename__ = "agents"

    id: Mapped[id_pk]
    name: Mapped[str] = mapped_column(String(128), unique=True)
    profile: Mapped[str] = mapped_column(String(128))
    key_hash: Mapped[digest] = mapped_column(unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[timestamp]
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ToolPinRow(Base):
    """An MCP tool's pinned definition and its quarantine, shared by every gateway on this database.

    Not part of the chain: the chain records each approval and rejection as an event; this is the state.
    """

    __tablename__ = "mcp_tool_pins"
    __table_args__ = (Index("ix_mcp_tool_pins_status", "status", "updated_at"),)

    key: Mapped[digest] = mapped_column(primary_key=True)
    """SHA-256 of (server, tool): names of any length, one fixed-width key."""
    server: Mapped[str] = mapped_column(Text)
    tool: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    """pinned or quarantined."""
    digest: Mapped[digest]
    description: Mapped[str] = mapped_column(Text)
    input_schema: Mapped[str] = mapped_column(Text)
    """JSON."""
    pinned_at: Mapped[timestamp]
    observed: Mapped[str | None] = mapped_column(Text)
    """The changed definition awaiting review (a ToolSpec as JSON)."""
    observed_digest: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    rejected_digest: Mapped[str | None] = mapped_column(String(64))
    """The observed definition a reviewer rejected: it stays quarantined and leaves the review queue."""
    updated_at: Mapped[timestamp]
    """When the status or the observed definition last changed."""


class HeldCallRow(Base):
    """A tool call (or a request or answer) waiting for a reviewer, on the gateway instance that holds it.

    Not part of the chain: the chain has the held request's record (decision ``hold``) and the event of its
    outcome, written by the holding gateway before it acts; this is the queue and the decision's hand-over.
    """

    __tablename__ = "held_calls"
    __table_args__ = (
        Index("ix_held_calls_status", "status", "held_at"),
        Index("ix_held_calls_instance", "instance_id", "status"),
        Index("ix_held_calls_request_id", "request_id"),
    )

    id: Mapped[id_pk]
    """The number reviewers name (``modelgate calls approve ID``)."""
    request_id: Mapped[str] = mapped_column(String(128))
    instance_id: Mapped[instance_fk]
    """The gateway instance whose flow waits: only it releases or refuses the call."""
    stage: Mapped[str] = mapped_column(String(16))
    """request (an agent's call, e.g. MCP ``tools/call``, not yet forwarded) or response (a model's answer
    proposing calls, not yet returned to the agent)."""
    agent: Mapped[name]
    session: Mapped[name]
    protocol: Mapped[str] = mapped_column(String(32))
    host: Mapped[name]
    calls: Mapped[str] = mapped_column(Text)
    """JSON: the held tool calls (name, redacted arguments, MCP server)."""
    reasons: Mapped[str] = mapped_column(Text)
    """JSON: the findings that held it (rule, severity, redacted reason)."""
    status: Mapped[str] = mapped_column(String(16))
    """pending, approved, rejected or expired."""
    held_at: Mapped[timestamp]
    expires_at: Mapped[timestamp]
    """No decision is taken after this; the holding gateway refuses the call."""
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(Text)
    """ui, api or cli and who (the admin session, the operator), or the gateway for an expiry."""
    note: Mapped[str] = mapped_column(Text, default="")
