"""What the runtime's call-site validation and its journal add: the ``interrupted`` status, the
chunk ``metadata`` column, and the count of replaced characters on a call.

``interrupted``: a call whose runtime process died mid-call, recovered from its journal. The
CHECK constraint is replaced NOT VALID and then validated, so the validation scans ``calls``
under a lock that lets finalizes go on. Both new columns have constant defaults: adding them
does not rewrite the tables.

Revision ID: 0006
Revises: 0009
Create Date: 2026-11-30 04:10:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0006"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADD_STATUS_AFTER = (
    "ALTER TABLE calls ADD CONSTRAINT ck_calls_status"
    " CHECK (status IN ('in_progress', 'ended', 'error', 'interrupted')) NOT VALID"
)
ADD_STATUS_BEFORE = (
    "ALTER TABLE calls ADD CONSTRAINT ck_calls_status"
    " CHECK (status IN ('in_progress', 'ended', 'error')) NOT VALID"
)


def _replace_status_check(add_constraint: str) -> None:
    op.drop_constraint(op.f("ck_calls_status"), "calls", type_="check")
    op.execute(sa.text(add_constraint))
    op.execute(sa.text("ALTER TABLE calls VALIDATE CONSTRAINT ck_calls_status"))


def upgrade() -> None:
    _replace_status_check(ADD_STATUS_AFTER)
    op.add_column(
        "calls",
        sa.Column("replaced_characters", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "call_rag_chunks",
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("call_rag_chunks", "metadata")
    op.drop_column("calls", "replaced_characters")
    # Interrupted calls keep their content; they read as ended under the old statuses.
    op.execute(sa.text("UPDATE calls SET status = 'ended' WHERE status = 'interrupted'"))
    _replace_status_check(ADD_STATUS_BEFORE)
