"""Tables the system keeps about itself: dead letters, periodic job runs, archived partitions."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Index,
    LargeBinary,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlmodel import Field, SQLModel

from models.base import Created, Timestamped, in_check
from models.enums import ArchiveStatus, DeadLetterStatus, values


class DeadLetter(Timestamped, table=True):
    """A payload that could not be persisted, kept whole so an operator can inspect and replay it.

    The raw message is stored as bytes: a malformed payload may hold text PostgreSQL refuses in
    ``text``/``jsonb`` (a NUL character, say), and it must still be kept. The same payload
    dead-lettered twice (duplicate delivery) is one row with ``attempts`` counted up.
    """

    __tablename__ = "failed_payloads"
    __table_args__ = (
        CheckConstraint(in_check("status", values(DeadLetterStatus)), name="status"),
        Index("ix_failed_payloads_status_last_seen_at", "status", "last_seen_at"),
        Index("ix_failed_payloads_call_id", "call_id"),
    )

    id: uuid.UUID | None = Field(
        default=None,
        sa_type=PG_UUID(as_uuid=True),
        primary_key=True,
        sa_column_kwargs={"server_default": text("uuidv7()")},
    )
    payload_sha256: str = Field(max_length=64, unique=True)
    payload: bytes = Field(sa_type=LargeBinary)
    call_id: uuid.UUID | None = Field(default=None, sa_type=PG_UUID(as_uuid=True))
    task_name: str = Field(max_length=100)
    task_id: str | None = Field(default=None, max_length=255)
    error_class: str = Field(max_length=100)
    error_message: str = Field(sa_type=Text)
    attempts: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    status: str = Field(
        default=DeadLetterStatus.PENDING.value,
        max_length=16,
        sa_column_kwargs={"server_default": DeadLetterStatus.PENDING.value},
    )
    first_seen_at: datetime = Field(
        sa_type=DateTime(timezone=True), sa_column_kwargs={"server_default": text("now()")}
    )
    last_seen_at: datetime = Field(
        sa_type=DateTime(timezone=True), sa_column_kwargs={"server_default": text("now()")}
    )
    replayed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    replay_task_id: str | None = Field(default=None, max_length=255)
    #: What an operator replayed instead of ``payload`` (``dead-letter replay ID --from FILE``),
    #: and when: the edit is kept next to what arrived.
    edited_payload: bytes | None = Field(default=None, sa_type=LargeBinary)
    edited_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class CallConflict(SQLModel, table=True):
    """A delivery of a stored (call id, revision) with other content, and which one was kept.

    Two deliveries must never silently differ: the rule (the later ``finalized_at``, then the
    greater digest) keeps one, the losing incoming payload is dead-lettered, and this row is
    what ``callstore check`` and the metrics endpoint report.
    """

    __tablename__ = "call_conflicts"
    __table_args__ = (
        CheckConstraint(in_check("kept", ("incoming", "stored")), name="kept"),
        Index("ix_call_conflicts_call_id", "call_id"),
        Index("ix_call_conflicts_seen_at", "seen_at"),
    )

    id: uuid.UUID | None = Field(
        default=None,
        sa_type=PG_UUID(as_uuid=True),
        primary_key=True,
        sa_column_kwargs={"server_default": text("uuidv7()")},
    )
    call_id: uuid.UUID = Field(sa_type=PG_UUID(as_uuid=True))
    revision: int = Field(sa_type=BigInteger)
    kept: str = Field(max_length=16)
    stored_digest: str = Field(max_length=64)
    incoming_digest: str = Field(max_length=64)
    stored_finalized_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    incoming_finalized_at: datetime = Field(sa_type=DateTime(timezone=True))
    task_id: str | None = Field(default=None, max_length=255)
    seen_at: datetime = Field(
        sa_type=DateTime(timezone=True), sa_column_kwargs={"server_default": text("now()")}
    )


class JobRun(SQLModel, table=True):
    """The last run of each periodic job, so operators (and the metrics endpoint) can see when
    rotation, retention, migration and checks last succeeded."""

    __tablename__ = "job_runs"
    __table_args__ = (
        CheckConstraint(
            in_check("last_status", ("running", "succeeded", "failed", "skipped")),
            name="last_status",
        ),
    )

    job: str = Field(max_length=100, primary_key=True)
    last_status: str = Field(max_length=16)
    last_started_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    last_finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    last_success_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    last_error: str | None = Field(default=None, sa_type=Text)
    last_duration_ms: float | None = None
    runs: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    last_details: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column("last_details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    )


class ArchivedPartition(Created, table=True):
    """A monthly partition that retention took out of its table, and where it went.

    Retention detaches an expired partition, moves it into the ``archive`` schema and drops it
    after the grace period; this row is what operators read meanwhile, and what tells a run
    killed between two of those steps where to resume. The catalog says where a table is;
    this row keeps what the catalog forgets: when it was archived, how many rows it held, its
    export and the checksum that export was verified against.
    """

    __tablename__ = "archived_partitions"
    __table_args__ = (
        CheckConstraint(in_check("status", values(ArchiveStatus)), name="status"),
        # At most one detach in flight per partition, and one archived table per archive name.
        Index(
            "uq_archived_partitions_detaching",
            "partition_name",
            unique=True,
            postgresql_where=text("status = 'detaching'"),
        ),
        Index(
            "uq_archived_partitions_archive_name",
            "archive_name",
            unique=True,
            postgresql_where=text("status = 'archived'"),
        ),
        Index("ix_archived_partitions_status_archived_at", "status", "archived_at"),
    )

    id: uuid.UUID | None = Field(
        default=None,
        sa_type=PG_UUID(as_uuid=True),
        primary_key=True,
        sa_column_kwargs={"server_default": text("uuidv7()")},
    )
    parent_table: str = Field(max_length=63)
    partition_name: str = Field(max_length=63)
    month: date = Field(sa_type=Date)
    status: str = Field(
        default=ArchiveStatus.DETACHING.value,
        max_length=16,
        sa_column_kwargs={"server_default": ArchiveStatus.DETACHING.value},
    )
    archive_name: str | None = Field(default=None, max_length=63)
    detach_started_at: datetime = Field(sa_type=DateTime(timezone=True))
    archived_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    row_estimate: int | None = Field(default=None, sa_type=BigInteger)
    row_count: int | None = Field(default=None, sa_type=BigInteger)
    checksum: str | None = Field(default=None, max_length=64)
    export_path: str | None = Field(default=None, sa_type=Text)
    exported_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    verified_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    dropped_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    last_error: str | None = Field(default=None, sa_type=Text)
