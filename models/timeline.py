"""The four high-volume timeline tables, RANGE-partitioned by month on ``timestamp``.

They carry no foreign key to ``calls``: an expired month is removed by detaching and dropping
its partition (constant cost), which a cascading foreign key would turn into a row-by-row
delete. ``worker.maintenance.partitions`` creates the monthly partitions; the consistency check verifies
that no row is left without its call.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Numeric,
    PrimaryKeyConstraint,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.orm import relationship
from sqlmodel import Field, Relationship, SQLModel

from models.base import in_check
from models.enums import MessageRole, MetricType, SearchMode, values

if TYPE_CHECKING:
    from models.calls import CallRagChunk


def _partitioned(table: str, *extra: Any) -> tuple[Any, ...]:
    """Table arguments every partitioned table shares: a primary key that includes the partition
    key (PostgreSQL requires it), a BRIN index on time and monthly RANGE partitioning."""
    return (
        PrimaryKeyConstraint("id", "timestamp", name=f"pk_{table}"),
        Index(f"ix_{table}_timestamp_brin", "timestamp", postgresql_using="brin"),
        *extra,
        {"postgresql_partition_by": "RANGE (timestamp)"},
    )


class _TimelineRow(SQLModel):
    id: uuid.UUID | None = Field(
        default=None,
        sa_type=PG_UUID(as_uuid=True),
        sa_column_kwargs={"server_default": text("uuidv7()"), "nullable": False},
    )
    call_id: uuid.UUID = Field(sa_type=PG_UUID(as_uuid=True))
    timestamp: datetime = Field(sa_type=DateTime(timezone=True))


class CallMessage(_TimelineRow, table=True):
    __tablename__ = "call_messages"
    __table_args__ = _partitioned(
        "call_messages",
        CheckConstraint(in_check("role", values(MessageRole)), name="role"),
        Index("ix_call_messages_call_id_sequence", "call_id", "sequence"),
    )

    sequence: int
    role: str = Field(max_length=16)
    content: str = Field(sa_type=Text)
    node_id: str | None = Field(default=None, max_length=255)
    turn_number: int | None = None
    was_interrupted: bool = Field(default=False, sa_column_kwargs={"server_default": "false"})


class CallTransition(_TimelineRow, table=True):
    __tablename__ = "call_transitions"
    __table_args__ = _partitioned(
        "call_transitions",
        Index("ix_call_transitions_call_id_sequence", "call_id", "sequence"),
        Index("ix_call_transitions_from_node_id_to_node_id", "from_node_id", "to_node_id"),
    )

    sequence: int
    from_node_id: str | None = Field(default=None, max_length=255)
    to_node_id: str = Field(max_length=255)
    reason: str | None = Field(default=None, max_length=255)
    condition: str | None = Field(default=None, max_length=500)
    turn_number: int | None = None
    from_node_name: str | None = Field(default=None, max_length=500)
    to_node_name: str | None = Field(default=None, max_length=500)


class CallMetric(_TimelineRow, table=True):
    __tablename__ = "call_metrics"
    __table_args__ = _partitioned(
        "call_metrics",
        CheckConstraint(in_check("metric_type", values(MetricType)), name="metric_type"),
        Index("ix_call_metrics_call_id_metric_type", "call_id", "metric_type"),
    )

    metric_type: str = Field(max_length=32)
    value: Decimal = Field(sa_type=Numeric(15, 4))
    processor: str | None = Field(default=None, max_length=255)
    turn_number: int | None = None
    node_id: str | None = Field(default=None, max_length=255)


class CallRagRetrieval(_TimelineRow, table=True):
    __tablename__ = "call_rag_retrievals"
    __table_args__ = _partitioned(
        "call_rag_retrievals",
        CheckConstraint(
            "search_mode IS NULL OR " + in_check("search_mode", values(SearchMode)),
            name="search_mode",
        ),
        Index("ix_call_rag_retrievals_call_id_query_sequence", "call_id", "query_sequence"),
    )

    query_sequence: int
    query_text: str = Field(sa_type=Text)
    search_mode: str | None = Field(default=None, max_length=16)
    chunks_retrieved: int = 0
    top_k: int | None = None
    processing_time_ms: Decimal | None = Field(default=None, sa_type=Numeric(10, 2))
    query_params: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column("query_params", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    )
    node_id: str | None = Field(default=None, max_length=255)
    turn_number: int | None = None

    #: The chunks this retrieval returned, best first. ``call_rag_chunks.retrieval_id`` has no
    #: foreign key (this table is partitioned), so the join names its foreign side; read-only,
    #: like ``Call``'s relationships.
    chunks: list[CallRagChunk] = Relationship(
        sa_relationship=relationship(
            "CallRagChunk",
            primaryjoin="CallRagRetrieval.id == foreign(CallRagChunk.retrieval_id)",
            order_by="[CallRagChunk.chunk_rank, CallRagChunk.id]",
            # Stated, not read from the annotation: ``CallRagChunk`` is not defined yet here.
            collection_class=list,
            viewonly=True,
        )
    )


# ``chunks`` names ``CallRagChunk``, which ``models.calls`` defines (and which imports this module
# at its top): importing it here, after this module's classes exist, makes importing either
# module enough for the ORM to resolve every relationship.
import models.calls  # noqa: E402, F401
