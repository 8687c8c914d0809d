"""The audit database as first shipped: chain, bodies, request index, prune anchors, instances, agents.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    meta = op.create_table(
        "audit_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_audit_meta"),
    )
    op.bulk_insert(meta, [{"key": "database_id", "value": str(uuid.uuid4())}])
    op.create_table(
        "audit_instances",
        sa.Column("instance_id", sa.String(36), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("instance_id", name="pk_audit_instances"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("instance_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("session", sa.String(256), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("seal", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
        sa.UniqueConstraint("instance_id", "seq", name="uq_audit_log_instance_seq"),
    )
    op.create_index("ix_audit_log_request_id", "audit_log", ["request_id"])
    op.create_index("ix_audit_log_kind_at", "audit_log", ["kind", "at", "id"])
    op.create_index("ix_audit_log_session_at", "audit_log", ["session", "at", "id"])
    op.create_table(
        "audit_bodies",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_audit_bodies"),
    )
    op.create_table(
        "audit_requests",
        sa.Column("id", _ROW_ID, autoincrement=False, nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("instance_id", sa.String(36), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("agent", sa.String(256), nullable=False),
        sa.Column("session", sa.String(256), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("protocol", sa.String(32), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("host", sa.String(256), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("model", sa.String(256), nullable=True),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("request_decision", sa.String(8), nullable=False),
        sa.Column("request_size", sa.BigInteger(), nullable=False),
        sa.Column("request_body", sa.String(64), nullable=True),
        sa.Column("tools", sa.Text(), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("response_id", _ROW_ID, nullable=True),
        sa.Column("response_decision", sa.String(8), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("latency_us", sa.BigInteger(), nullable=True),
        sa.Column("response_size", sa.BigInteger(), nullable=True),
        sa.Column("response_body", sa.String(64), nullable=True),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=True),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["id"], ["audit_log.id"], name="fk_audit_requests_id"),
        sa.ForeignKeyConstraint(["response_id"], ["audit_log.id"], name="fk_audit_requests_response_id"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_requests"),
        sa.UniqueConstraint("request_id", name="uq_audit_requests_request_id"),
    )
    for column in ("agent", "session", "decision", "model", "host"):
        op.create_index(f"ix_audit_requests_{column}", "audit_requests", [column, "at", "id"])
    op.create_index("ix_audit_requests_at", "audit_requests", ["at", "id"])
    op.create_index("ix_audit_requests_request_body", "audit_requests", ["request_body"])
    op.create_index("ix_audit_requests_response_body", "audit_requests", ["response_body"])
    for child, column in (("audit_request_tools", "tool"), ("audit_request_rules", "rule")):
        op.create_table(
            child,
            sa.Column("request_row_id", _ROW_ID, nullable=False),
            sa.Column(column, sa.String(256), nullable=False),
            sa.Column("at", _TIME, nullable=False),
            sa.ForeignKeyConstraint(["request_row_id"], ["audit_requests.id"], name=f"fk_{child}_request_row_id"),
            sa.PrimaryKeyConstraint("request_row_id", column, name=f"pk_{child}"),
        )
        op.create_index(f"ix_{child}_{column}", child, [column, "at", "request_row_id"])
    op.create_table(
        "audit_prune_anchors",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("instance_id", sa.String(36), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("before", _TIME, nullable=False),
        sa.Column("pruned", sa.BigInteger(), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_prune_anchors"),
    )
    op.create_index("ix_audit_prune_anchors_instance", "audit_prune_anchors", ["instance_id", "first_seq"])
    op.create_table(
        "agents",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("profile", sa.String(128), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("key_prefix", sa.String(16), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("revoked_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
        sa.UniqueConstraint("name", name="uq_agents_name"),
        sa.UniqueConstraint("key_hash", name="uq_agents_key_hash"),
    )


def downgrade() -> None:
    for table in ("agents", "audit_prune_anchors", "audit_request_rules", "audit_request_tools", "audit_requests",
                  "audit_bodies", "audit_log", "audit_instances", "audit_meta"):
        op.drop_table(table)
