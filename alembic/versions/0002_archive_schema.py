"""The ``archive`` schema and ``archived_partitions``: where retention keeps expired partitions.

Retention detaches an expired monthly partition, moves it into ``archive`` and drops it after
the grace period (``docs/maintenance.md``). ``archived_partitions`` records each one: when it
was archived, its row count and checksum when it was exported, and when it was dropped.

The downgrade refuses to drop a schema that still holds archived partitions (``RESTRICT``):
those are data an operator may still want back.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:48:53.605318+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS archive")
    op.create_table(
        "archived_partitions",
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("parent_table", sa.String(length=63), nullable=False),
        sa.Column("partition_name", sa.String(length=63), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="detaching", nullable=False),
        sa.Column("archive_name", sa.String(length=63), nullable=True),
        sa.Column("detach_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("row_estimate", sa.BigInteger(), nullable=True),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("checksum", sa.String(length=64), nullable=True),
        sa.Column("export_path", sa.Text(), nullable=True),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dropped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('detaching', 'archived', 'dropped', 'missing')",
            name=op.f("ck_archived_partitions_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archived_partitions")),
    )
    op.create_index(
        "ix_archived_partitions_status_archived_at",
        "archived_partitions",
        ["status", "archived_at"],
        unique=False,
    )
    op.create_index(
        "uq_archived_partitions_archive_name",
        "archived_partitions",
        ["archive_name"],
        unique=True,
        postgresql_where=sa.text("status = 'archived'"),
    )
    op.create_index(
        "uq_archived_partitions_detaching",
        "archived_partitions",
        ["partition_name"],
        unique=True,
        postgresql_where=sa.text("status = 'detaching'"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_archived_partitions_detaching",
        table_name="archived_partitions",
        postgresql_where=sa.text("status = 'detaching'"),
    )
    op.drop_index(
        "uq_archived_partitions_archive_name",
        table_name="archived_partitions",
        postgresql_where=sa.text("status = 'archived'"),
    )
    op.drop_index("ix_archived_partitions_status_archived_at", table_name="archived_partitions")
    op.drop_table("archived_partitions")
    op.execute("DROP SCHEMA IF EXISTS archive RESTRICT")
