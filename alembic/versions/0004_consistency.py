"""Consistency reports and their discrepancies; call start announcements.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 12:24:49.533712+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_announcements",
        sa.Column("call_id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=True),
        sa.Column("agent_id", sa.UUID(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "announced_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_call_announcements")),
    )
    op.create_index(
        "ix_call_announcements_announced_at", "call_announcements", ["announced_at"], unique=False
    )
    op.create_table(
        "consistency_reports",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("full_scan", sa.Boolean(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checks", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("discrepancy_count", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "stats",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('running', 'clean', 'discrepancies', 'failed')",
            name=op.f("ck_consistency_reports_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consistency_reports")),
    )
    op.create_index(
        "ix_consistency_reports_started_at", "consistency_reports", ["started_at"], unique=False
    )
    op.create_table(
        "consistency_discrepancies",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("report_id", sa.UUID(), nullable=False),
        sa.Column("check", sa.Text(), nullable=False),
        sa.Column("class", sa.Text(), nullable=False),
        sa.Column("keys", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("repairable", sa.Boolean(), nullable=False),
        sa.Column("repaired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["consistency_reports.id"],
            name=op.f("fk_consistency_discrepancies_report_id_consistency_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consistency_discrepancies")),
    )
    op.create_index(
        "ix_consistency_discrepancies_class", "consistency_discrepancies", ["class"], unique=False
    )
    op.create_index(
        "ix_consistency_discrepancies_report_id",
        "consistency_discrepancies",
        ["report_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_consistency_discrepancies_report_id", table_name="consistency_discrepancies")
    op.drop_index("ix_consistency_discrepancies_class", table_name="consistency_discrepancies")
    op.drop_table("consistency_discrepancies")
    op.drop_index("ix_consistency_reports_started_at", table_name="consistency_reports")
    op.drop_table("consistency_reports")
    op.drop_index("ix_call_announcements_announced_at", table_name="call_announcements")
    op.drop_table("call_announcements")
