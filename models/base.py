"""Shared column helpers and the naming convention every table uses.

Constraint names are contracts: idempotent writes use ``ON CONFLICT ON CONSTRAINT``, Alembic
compares them, and operators read them in error messages. The convention below makes every
name predictable from its table and columns.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, text
from sqlmodel import Field, SQLModel

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLModel.metadata.naming_convention = NAMING_CONVENTION

metadata = SQLModel.metadata

#: Tables that are RANGE-partitioned by month on their ``timestamp`` column.
PARTITIONED_TABLES: tuple[str, ...] = (
    "call_messages",
    "call_transitions",
    "call_metrics",
    "call_rag_retrievals",
)

#: Tables whose ``updated_at`` a trigger keeps current (the initial migration keeps its own frozen
#: copy; a table added later gets its trigger from the revision that adds it).
UPDATED_AT_TABLES: tuple[str, ...] = (
    "calls",
    "call_transcripts",
    "call_analysis",
    "customers",
    "organizations",
    "behavioral_tactics",
    "system_prompts",
    "agent_configs",
    "failed_payloads",
)


def in_check(column: str, values: tuple[str, ...]) -> str:
    """SQL text of a CHECK that restricts an enum-like VARCHAR column to ``values``."""
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"


def brin(table: str, column: str) -> Index:
    """A BRIN index on an insert-ordered time column: a few pages, nearly free to maintain on
    the write path, and enough for the consistency check's "changed since" range scans."""
    return Index(f"ix_{table}_{column}_brin", column, postgresql_using="brin")


class Created(SQLModel):
    """Mixin: ``created_at`` set by the database when the row is inserted."""

    created_at: datetime | None = Field(
        default=None,
        sa_type=DateTime(timezone=True),
        sa_column_kwargs={"server_default": text("now()"), "nullable": False},
    )


class Timestamped(Created):
    """Mixin: ``created_at`` plus ``updated_at``, which the ``set_updated_at`` trigger keeps current."""

    updated_at: datetime | None = Field(
        default=None,
        sa_type=DateTime(timezone=True),
        sa_column_kwargs={"server_default": text("now()"), "nullable": False},
    )
