"""Held calls: tool calls waiting for a reviewer's approval, queued in the database so that the admin UI and
``modelgate calls`` of any process can decide them and the holding gateway sees the decision.

Revision ID: 0003
Revises: 0002
Create Date: 2025-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "held_calls",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("instance_id", sa.String(36), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("agent", sa.String(256), nullable=False),
        sa.Column("session", sa.String(256), nullable=False),
        sa.Column("protocol", sa.String(32), nullable=False),
        sa.Column("host", sa.String(256), nullable=False),
        sa.Column("calls", sa.Text(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("held_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("decided_at", _TIME, nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_held_calls"),
    )
    op.create_index("ix_held_calls_status", "held_calls", ["status", "held_at"])
    op.create_index("ix_held_calls_instance", "held_calls", ["instance_id", "status"])
    op.create_index("ix_held_calls_request_id", "held_calls", ["request_id"])


def downgrade() -> None:
    op.drop_table("held_calls")
