"""MCP tool pins in the database, so that quarantines survive restarts and gateways share them; the
dashboard's index of blocks and alerts per agent over time.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mcp_tool_pins",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("server", sa.Text(), nullable=False),
        sa.Column("tool", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("input_schema", sa.Text(), nullable=False),
        sa.Column("pinned_at", _TIME, nullable=False),
        sa.Column("observed", sa.Text(), nullable=True),
        sa.Column("observed_digest", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("rejected_digest", sa.String(64), nullable=True),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_mcp_tool_pins"),
    )
    op.create_index("ix_mcp_tool_pins_status", "mcp_tool_pins", ["status", "updated_at"])
    op.create_index("ix_audit_requests_decision_agent", "audit_requests", ["decision", "at", "agent"])


def downgrade() -> None:
    op.drop_index("ix_audit_requests_decision_agent", "audit_requests")
    op.drop_table("mcp_tool_pins")
