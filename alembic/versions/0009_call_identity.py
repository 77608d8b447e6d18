"""Call identity and dead-letter edits.

* ``calls.content_digest``: the SHA-256 of the stored payload's JSON, so a delivery of the same
  (call id, revision) with other content is told from a redelivery;
* ``call_conflicts``: each such delivery, with the rule's choice (``worker.calls.persist``);
* ``failed_payloads.edited_payload`` / ``edited_at``: what an operator replayed instead of the
  payload that arrived (``callstore dead-letter replay ID --from FILE``).

Adding nullable columns without defaults rewrites nothing: the migration is instant on a
populated store.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 06:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("calls", sa.Column("content_digest", sa.String(length=64), nullable=True))
    op.add_column("failed_payloads", sa.Column("edited_payload", sa.LargeBinary(), nullable=True))
    op.add_column(
        "failed_payloads", sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "call_conflicts",
        sa.Column(
            "id", postgresql.UUID(as_uuid=True), server_default=sa.text("uuidv7()"), nullable=False
        ),
        sa.Column("call_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("kept", sa.String(length=16), nullable=False),
        sa.Column("stored_digest", sa.String(length=64), nullable=False),
        sa.Column("incoming_digest", sa.String(length=64), nullable=False),
        sa.Column("stored_finalized_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("incoming_finalized_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task_id", sa.String(length=255), nullable=True),
        sa.Column(
            "seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint("kept IN ('incoming', 'stored')", name=op.f("ck_call_conflicts_kept")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_conflicts")),
    )
    op.create_index("ix_call_conflicts_call_id", "call_conflicts", ["call_id"], unique=False)
    op.create_index("ix_call_conflicts_seen_at", "call_conflicts", ["seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_call_conflicts_seen_at", table_name="call_conflicts")
    op.drop_index("ix_call_conflicts_call_id", table_name="call_conflicts")
    op.drop_table("call_conflicts")
    op.drop_column("failed_payloads", "edited_at")
    op.drop_column("failed_payloads", "edited_payload")
    op.drop_column("calls", "content_digest")
