"""Tables the system keeps about itself: the dead-letter store and periodic job runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Column, DateTime, Index, LargeBinary, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlmodel import Field, SQLModel

from models.base import Timestamped, in_check
from models.enums import FailedPayloadStatus, values


class FailedPayload(Timestamped, table=True):
    """A payload that could not be persisted, kept whole so an operator can inspect and replay it.

    The raw message is stored as bytes: a malformed payload may hold text PostgreSQL refuses in
    ``text``/``jsonb`` (a NUL character, say), and it must still be kept. The same payload
    dead-lettered twice (duplicate delivery) is one row with ``attempts`` counted up.
    """

    __tablename__ = "failed_payloads"
    __table_args__ = (
        CheckConstraint(in_check("status", values(FailedPayloadStatus)), name="status"),
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
        default=FailedPayloadStatus.PENDING.value,
        max_length=16,
        sa_column_kwargs={"server_default": FailedPayloadStatus.PENDING.value},
    )
    first_seen_at: datetime = Field(
        sa_type=DateTime(timezone=True), sa_column_kwargs={"server_default": text("now()")}
    )
    last_seen_at: datetime = Field(
        sa_type=DateTime(timezone=True), sa_column_kwargs={"server_default": text("now()")}
    )
    replayed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    replay_task_id: str | None = Field(default=None, max_length=255)


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
