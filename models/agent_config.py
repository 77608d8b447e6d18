"""Agent configuration that used to live in Azure Blob Storage (seed 000)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Computed,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlmodel import Field

from models.base import Timestamped, in_check

PROMPT_ENVIRONMENTS: tuple[str, ...] = ("development", "staging", "production")

#: A tactic's ``urgency_level`` setting as a number, NULL when it is absent or not a number: a
#: cast that can fail would make an odd config fail to insert. ``ix_behavioral_tactics_urgency``
#: indexes this expression, and a query that repeats it uses the index. Written as PostgreSQL
#: prints it back (``pg_get_indexdef``), line breaks included, which is what ``alembic check``
#: compares it with.
URGENCY_LEVEL_SQL = (
    "\nCASE\n    WHEN jsonb_typeof(config -> 'urgency_level'::text) = 'number'::text"
    " THEN (config ->> 'urgency_level'::text)::numeric\n    ELSE NULL::numeric\nEND"
)


class BehavioralTactic(Timestamped, table=True):
    """A negotiation tactic; ``config`` is queried with JSONB containment, hence the GIN index."""

    __tablename__ = "behavioral_tactics"
    __table_args__ = (
        Index(
            "ix_behavioral_tactics_config",
            "config",
            postgresql_using="gin",
            postgresql_ops={"config": "jsonb_path_ops"},
        ),
        Index("ix_behavioral_tactics_urgency", text(URGENCY_LEVEL_SQL)),
    )

    id: uuid.UUID = Field(
        sa_type=PG_UUID(as_uuid=True),
        primary_key=True,
        sa_column_kwargs={"server_default": text("gen_random_uuid()")},
    )
    name: str = Field(max_length=100, unique=True)
    archetype: str = Field(max_length=100)
    description: str | None = Field(default=None, sa_type=Text)
    config: dict[str, Any] = Field(sa_column=Column("config", JSONB, nullable=False))
    is_active: bool = Field(default=True, sa_column_kwargs={"server_default": "true"})


class SystemPrompt(Timestamped, table=True):
    """One version of a system prompt. A changed text is a new row with the next ``version``;
    the newest version of a name is the active one."""

    __tablename__ = "system_prompts"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        CheckConstraint(in_check("environment", PROMPT_ENVIRONMENTS), name="environment"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index(
            "ix_system_prompts_active",
            "name",
            unique=True,
            postgresql_where=text("is_active"),
        ),
    )

    id: uuid.UUID = Field(
        sa_type=PG_UUID(as_uuid=True),
        primary_key=True,
        sa_column_kwargs={"server_default": text("gen_random_uuid()")},
    )
    name: str = Field(max_length=100)
    environment: str = Field(
        default="production", max_length=16, sa_column_kwargs={"server_default": "production"}
    )
    prompt_template: str = Field(sa_type=Text)
    variables: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column("variables", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    )
    #: Computed by PostgreSQL from the template (``sha256_hex``, revision 0008), so a writer that
    #: does not know it — seed 000's ``INSERT`` — stores a prompt all the same.
    content_sha256: str | None = Field(
        default=None,
        sa_column=Column(
            "content_sha256",
            String(64),
            Computed("sha256_hex(prompt_template)", persisted=True),
            nullable=False,
        ),
    )
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    is_active: bool = Field(default=True, sa_column_kwargs={"server_default": "true"})


class AgentConfig(Timestamped, table=True):
    __tablename__ = "agent_configs"

    id: uuid.UUID = Field(
        sa_type=PG_UUID(as_uuid=True),
        primary_key=True,
        sa_column_kwargs={"server_default": text("gen_random_uuid()")},
    )
    organization_id: uuid.UUID | None = Field(
        default=None,
        sa_type=PG_UUID(as_uuid=True),
        foreign_key="organizations.id",
        ondelete="CASCADE",
        index=True,
    )
    name: str = Field(max_length=100)
    voice_config: dict[str, Any] = Field(sa_column=Column("voice_config", JSONB, nullable=False))
    behavior_config: dict[str, Any] = Field(
        sa_column=Column("behavior_config", JSONB, nullable=False)
    )
    tool_config: dict[str, Any] = Field(sa_column=Column("tool_config", JSONB, nullable=False))
    is_active: bool = Field(default=True, sa_column_kwargs={"server_default": "true"})
