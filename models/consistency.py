"""What the consistency checks need and produce: call announcements and stored reports."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Column, DateTime, ForeignKey, Index, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlmodel import Field, SQLModel

from models.base import in_check

REPORT_STATUSES = ("running", "clean", "discrepancies", "failed")


class CallAnnouncement(SQLModel, table=True):
    """A call the runtime announced at its start and that has not been finalized yet.

    The finalize transaction deletes the row, so what stays here after a while is a call whose
    runtime died before handing it off: the consistency check lists them.
    """

    __tablename__ = "call_announcements"
    __table_args__ = (Index("ix_call_announcements_announced_at", "announced_at"),)

    call_id: uuid.UUID = Field(sa_type=PG_UUID(as_uuid=True), primary_key=True)
    tenant_id: uuid.UUID | None = Field(default=None, sa_type=PG_UUID(as_uuid=True))
    agent_id: uuid.UUID | None = Field(default=None, sa_type=PG_UUID(as_uuid=True))
    started_at: datetime = Field(sa_type=DateTime(timezone=True))
    announced_at: datetime | None = Field(
        default=None,
        sa_type=DateTime(timezone=True),
        sa_column_kwargs={"server_default": text("now()"), "nullable": False},
    )


class ConsistencyReport(SQLModel, table=True):
    """One run of the consistency checks: when, which checks, what it found."""

    __tablename__ = "consistency_reports"
    __table_args__ = (
        CheckConstraint(in_check("status", REPORT_STATUSES), name="status"),
        Index("ix_consistency_reports_started_at", "started_at"),
    )

    id: uuid.UUID | None = Field(
        default=None,
        sa_type=PG_UUID(as_uuid=True),
        primary_key=True,
        sa_column_kwargs={"server_default": text("uuidv7()")},
    )
    started_at: datetime = Field(sa_type=DateTime(timezone=True))
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    status: str = Field(max_length=16)
    full_scan: bool = False
    since: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    checks: list[str] = Field(
        default_factory=list, sa_column=Column("checks", ARRAY(Text), nullable=False)
    )
    discrepancy_count: int = 0
    error: str | None = Field(default=None, sa_type=Text)
    stats: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column("stats", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    )


class ConsistencyDiscrepancy(SQLModel, table=True):
    """One thing a check found wrong, with the keys that locate it exactly."""

    __tablename__ = "consistency_discrepancies"
    __table_args__ = (
        Index("ix_consistency_discrepancies_report_id", "report_id"),
        Index("ix_consistency_discrepancies_class", "class"),
    )

    id: uuid.UUID | None = Field(
        default=None,
        sa_type=PG_UUID(as_uuid=True),
        primary_key=True,
        sa_column_kwargs={"server_default": text("uuidv7()")},
    )
    report_id: uuid.UUID = Field(
        sa_column=Column(
            "report_id",
            PG_UUID(as_uuid=True),
            ForeignKey("consistency_reports.id", ondelete="CASCADE"),
            nullable=False,
        )
    )
    check_name: str = Field(sa_column=Column("check", Text, nullable=False))
    kind: str = Field(sa_column=Column("class", Text, nullable=False))
    keys: dict[str, Any] = Field(sa_column=Column("keys", JSONB, nullable=False))
    detail: str = Field(sa_type=Text)
    repairable: bool = False
    repaired_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
