"""State of the Azure migration: where each source stands, and what could not be migrated.

A checkpoint row is written in the same transaction as the data of the batch it describes, so
the store and the position in the source can never disagree: a batch killed before its commit
left neither, and is read again from the same position.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlmodel import Field, SQLModel


def _counter() -> Any:
    return Field(default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": "0"})


class MigrationCheckpoint(SQLModel, table=True):
    """One row per legacy source (an Azure table or blob container).

    A *pass* reads a source once, in key order, from ``pass_from`` (the previous watermark less
    the overlap window; NULL for the first pass: everything). ``continuation`` is the SDK's
    continuation token after the last page written; ``watermark`` is the newest service
    ``Timestamp`` seen by the last completed pass.
    """

    __tablename__ = "migration_checkpoints"

    source: str = Field(max_length=64, primary_key=True)
    watermark: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    pass_open: bool = Field(default=False, sa_column_kwargs={"server_default": "false"})
    pass_from: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    pass_high: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    continuation: Any = Field(default=None, sa_column=Column("continuation", JSONB))
    #: The last key written by the open pass (for status: what lies ahead of it).
    position: str | None = Field(default=None, sa_type=Text)
    passes: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    pass_scanned: int = _counter()
    pass_changed: int = _counter()
    #: Entities the last completed pass migrated or rejected anew; 0 means it was caught up.
    last_pass_changed: int | None = Field(default=None, sa_type=BigInteger)
    scanned: int = _counter()
    migrated: int = _counter()
    rejected: int = _counter()
    busy_seconds: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})
    last_batch_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    updated_at: datetime | None = Field(
        default=None,
        sa_type=DateTime(timezone=True),
        sa_column_kwargs={"server_default": text("now()"), "nullable": False},
    )


class MigrationReject(SQLModel, table=True):
    """A legacy record that could not be migrated, kept whole with the reason.

    One row per (source, key): reading the same bad record again moves ``last_seen_at`` on and
    adds nothing. When a later version of the record migrates, ``resolved_at`` is set.
    """

    __tablename__ = "migration_rejects"
    __table_args__ = (
        UniqueConstraint("source", "key"),
        Index("ix_migration_rejects_source_last_seen_at", "source", "last_seen_at"),
    )

    id: uuid.UUID | None = Field(
        default=None,
        sa_type=PG_UUID(as_uuid=True),
        primary_key=True,
        sa_column_kwargs={"server_default": text("uuidv7()")},
    )
    source: str = Field(max_length=64)
    key: str = Field(sa_type=Text)
    raw: str = Field(sa_type=Text)
    reason: str = Field(sa_type=Text)
    source_timestamp: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    first_seen_at: datetime = Field(
        sa_type=DateTime(timezone=True), sa_column_kwargs={"server_default": text("now()")}
    )
    last_seen_at: datetime = Field(
        sa_type=DateTime(timezone=True), sa_column_kwargs={"server_default": text("now()")}
    )
    resolved_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
