"""BRIN indexes on the times the incremental consistency check reads by.

``calls.updated_at`` and ``created_at`` of the unpartitioned child tables: without them an
incremental check walks the whole tables to find what changed since its watermark. BRIN keeps
the write path's cost negligible. Built CONCURRENTLY, outside the migration's transaction, so
finalizes keep writing while the indexes are made on a populated store.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 15:20:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("calls", "updated_at"),
    ("call_transcripts", "created_at"),
    ("call_rag_chunks", "created_at"),
    ("call_extracted_variables", "created_at"),
    ("call_analysis", "created_at"),
    ("call_user_interruptions", "created_at"),
    ("call_tool_executions", "created_at"),
    ("call_events", "created_at"),
)


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for table, column in INDEXES:
            op.create_index(
                f"ix_{table}_{column}_brin",
                table,
                [column],
                unique=False,
                postgresql_using="brin",
                postgresql_concurrently=True,
                if_not_exists=True,
            )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for table, column in INDEXES:
            op.drop_index(
                f"ix_{table}_{column}_brin",
                table_name=table,
                postgresql_concurrently=True,
                if_exists=True,
            )
