"""Initial schema: the call store (seed 001), the migrated Azure data (seed 000), dead letters.

Beyond what autogenerate sees, this revision enables ``vector`` and installs the
``set_updated_at`` trigger on every table with ``updated_at``. It makes no monthly partition:
the partition rotation makes them after ``alembic upgrade`` (``callstore partitions ensure``,
the compose ``migrate`` service, ``callstore stack up``, and beat from then on), so what this
revision does never depends on the code or the clock of the day it runs.

A revision is frozen: it imports nothing from ``models`` or ``worker``, whose later edits would
silently change what it does on a fresh database.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 11:28:30.002085+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from pgvector.sqlalchemy import Vector
from psycopg import sql
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The tables with ``updated_at`` at this revision, frozen here (``models.base.UPDATED_AT_TABLES``
#: may grow; a later revision installs the trigger on a table it adds).
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

SET_UPDATED_AT = """
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END;
$$
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute(SET_UPDATED_AT)
    _create_tables()
    for table in UPDATED_AT_TABLES:
        trigger = sql.SQL(
            "CREATE TRIGGER {trigger} BEFORE UPDATE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
        ).format(trigger=sql.Identifier(f"{table}_set_updated_at"), table=sql.Identifier(table))
        op.execute(trigger.as_string())


def _create_tables() -> None:
    op.create_table(
        "behavioral_tactics",
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("archetype", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("config", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_behavioral_tactics")),
        sa.UniqueConstraint("name", name=op.f("uq_behavioral_tactics_name")),
    )
    op.create_index(
        "ix_behavioral_tactics_config",
        "behavioral_tactics",
        ["config"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"config": "jsonb_path_ops"},
    )
    op.create_table(
        "call_messages",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("call_id", sa.UUID(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("node_id", sa.String(length=255), nullable=True),
        sa.Column("turn_number", sa.Integer(), nullable=True),
        sa.Column("was_interrupted", sa.Boolean(), server_default="false", nullable=False),
        sa.CheckConstraint(
            "role IN ('user', 'assistant', 'system')",
            name=op.f("ck_call_messages_role"),
        ),
        sa.PrimaryKeyConstraint("id", "timestamp", name="pk_call_messages"),
        postgresql_partition_by="RANGE (timestamp)",
    )
    op.create_index(
        "ix_call_messages_call_id_sequence",
        "call_messages",
        ["call_id", "sequence"],
        unique=False,
    )
    op.create_index(
        "ix_call_messages_timestamp_brin",
        "call_messages",
        ["timestamp"],
        unique=False,
        postgresql_using="brin",
    )
    op.create_table(
        "call_metrics",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("call_id", sa.UUID(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metric_type", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Numeric(precision=15, scale=4), nullable=False),
        sa.Column("processor", sa.String(length=255), nullable=True),
        sa.Column("turn_number", sa.Integer(), nullable=True),
        sa.Column("node_id", sa.String(length=255), nullable=True),
        sa.CheckConstraint(
            "metric_type IN ('stt_delay', 'user_to_bot_latency', 'transcript_llm_gap', 'rag_processing_time', 'variable_extraction_time', 'llm_ttfb', 'llm_processing_time', 'llm_to_tts_gap', 'total_pipeline_time', 'llm_prompt_tokens', 'llm_completion_tokens', 'tts_characters')",
            name=op.f("ck_call_metrics_metric_type"),
        ),
        sa.PrimaryKeyConstraint("id", "timestamp", name="pk_call_metrics"),
        postgresql_partition_by="RANGE (timestamp)",
    )
    op.create_index(
        "ix_call_metrics_call_id_metric_type",
        "call_metrics",
        ["call_id", "metric_type"],
        unique=False,
    )
    op.create_index(
        "ix_call_metrics_timestamp_brin",
        "call_metrics",
        ["timestamp"],
        unique=False,
        postgresql_using="brin",
    )
    op.create_table(
        "call_rag_retrievals",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("call_id", sa.UUID(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("query_sequence", sa.Integer(), nullable=False),
        sa.Column("query_text", sa.Text(), nullable=False),
        sa.Column("search_mode", sa.String(length=16), nullable=True),
        sa.Column("chunks_retrieved", sa.Integer(), nullable=False),
        sa.Column("top_k", sa.Integer(), nullable=True),
        sa.Column("processing_time_ms", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column(
            "query_params",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("node_id", sa.String(length=255), nullable=True),
        sa.Column("turn_number", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "search_mode IS NULL OR search_mode IN ('vector', 'fts', 'hybrid')",
            name=op.f("ck_call_rag_retrievals_search_mode"),
        ),
        sa.PrimaryKeyConstraint("id", "timestamp", name="pk_call_rag_retrievals"),
        postgresql_partition_by="RANGE (timestamp)",
    )
    op.create_index(
        "ix_call_rag_retrievals_call_id_query_sequence",
        "call_rag_retrievals",
        ["call_id", "query_sequence"],
        unique=False,
    )
    op.create_index(
        "ix_call_rag_retrievals_timestamp_brin",
        "call_rag_retrievals",
        ["timestamp"],
        unique=False,
        postgresql_using="brin",
    )
    op.create_table(
        "call_transitions",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("call_id", sa.UUID(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("from_node_id", sa.String(length=255), nullable=True),
        sa.Column("to_node_id", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("condition", sa.String(length=500), nullable=True),
        sa.Column("turn_number", sa.Integer(), nullable=True),
        sa.Column("from_node_name", sa.String(length=500), nullable=True),
        sa.Column("to_node_name", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", "timestamp", name="pk_call_transitions"),
        postgresql_partition_by="RANGE (timestamp)",
    )
    op.create_index(
        "ix_call_transitions_call_id_sequence",
        "call_transitions",
        ["call_id", "sequence"],
        unique=False,
    )
    op.create_index(
        "ix_call_transitions_from_node_id_to_node_id",
        "call_transitions",
        ["from_node_id", "to_node_id"],
        unique=False,
    )
    op.create_index(
        "ix_call_transitions_timestamp_brin",
        "call_transitions",
        ["timestamp"],
        unique=False,
        postgresql_using="brin",
    )
    op.create_table(
        "customers",
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("phone_number", sa.String(length=20), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("account_last_4", sa.String(length=4), nullable=True),
        sa.Column("postal_code", sa.String(length=16), nullable=True),
        sa.Column("balance", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("days_overdue", sa.Integer(), server_default="0", nullable=False),
        sa.Column("segment", sa.String(length=16), server_default="standard", nullable=False),
        sa.Column("language", sa.String(length=5), server_default="en", nullable=False),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint("language IN ('en', 'fr')", name=op.f("ck_customers_language")),
        sa.CheckConstraint("segment IN ('premium', 'standard')", name=op.f("ck_customers_segment")),
        sa.CheckConstraint(
            "days_overdue >= 0", name=op.f("ck_customers_days_overdue_not_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("external_id", name=op.f("uq_customers_external_id")),
    )
    op.create_index("ix_customers_phone_number", "customers", ["phone_number"], unique=False)
    op.create_table(
        "failed_payloads",
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("payload_sha256", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("call_id", sa.UUID(), nullable=True),
        sa.Column("task_name", sa.String(length=100), nullable=False),
        sa.Column("task_id", sa.String(length=255), nullable=True),
        sa.Column("error_class", sa.String(length=100), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="1", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column(
            "first_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replay_task_id", sa.String(length=255), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'replayed', 'discarded')",
            name=op.f("ck_failed_payloads_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_failed_payloads")),
        sa.UniqueConstraint("payload_sha256", name=op.f("uq_failed_payloads_payload_sha256")),
    )
    op.create_index("ix_failed_payloads_call_id", "failed_payloads", ["call_id"], unique=False)
    op.create_index(
        "ix_failed_payloads_status_last_seen_at",
        "failed_payloads",
        ["status", "last_seen_at"],
        unique=False,
    )
    op.create_table(
        "organizations",
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=True),
        sa.Column(
            "settings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("external_id", name=op.f("uq_organizations_external_id")),
    )
    op.create_table(
        "system_prompts",
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "environment",
            sa.String(length=16),
            server_default="production",
            nullable=False,
        ),
        sa.Column("prompt_template", sa.Text(), nullable=False),
        sa.Column(
            "variables",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.CheckConstraint(
            "environment IN ('development', 'staging', 'production')",
            name=op.f("ck_system_prompts_environment"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_system_prompts_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_system_prompts")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_system_prompts_name_version")),
    )
    op.create_index(
        "ix_system_prompts_active",
        "system_prompts",
        ["name"],
        unique=True,
        postgresql_where=sa.text("is_active"),
    )
    op.create_table(
        "agent_configs",
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("voice_config", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("behavior_config", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("tool_config", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_agent_configs_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_configs")),
    )
    op.create_index(
        op.f("ix_agent_configs_organization_id"),
        "agent_configs",
        ["organization_id"],
        unique=False,
    )
    op.create_table(
        "calls",
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("call_id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=True),
        sa.Column("agent_id", sa.UUID(), nullable=True),
        sa.Column("agent_version", sa.String(length=100), nullable=True),
        sa.Column("agent_name", sa.String(length=255), nullable=True),
        sa.Column("from_number", sa.String(length=50), nullable=True),
        sa.Column("to_number", sa.String(length=50), nullable=True),
        sa.Column("twilio_call_sid", sa.String(length=64), nullable=True),
        sa.Column("twilio_stream_sid", sa.String(length=64), nullable=True),
        sa.Column("recording_enabled", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("recording_sid", sa.String(length=64), nullable=True),
        sa.Column("recording_url", sa.Text(), nullable=True),
        sa.Column("direction", sa.String(length=16), server_default="inbound", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("initial_node", sa.String(length=255), nullable=True),
        sa.Column("final_node", sa.String(length=255), nullable=True),
        sa.Column("source", sa.String(length=16), server_default="runtime", nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("finalized_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("persisted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "call_type",
            sa.String(length=16),
            server_default="real_call",
            nullable=False,
        ),
        sa.Column("customer_id", sa.UUID(), nullable=True),
        sa.Column("legacy_customer_id", sa.String(length=255), nullable=True),
        sa.Column("organization_id", sa.UUID(), nullable=True),
        sa.Column("behavioral_tactic_id", sa.UUID(), nullable=True),
        sa.Column("conversation_id", sa.String(length=255), nullable=True),
        sa.Column("outcome", sa.String(length=100), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("total_turns", sa.Integer(), server_default="0", nullable=False),
        sa.Column("total_messages", sa.Integer(), server_default="0", nullable=False),
        sa.Column("total_transitions", sa.Integer(), server_default="0", nullable=False),
        sa.Column("avg_llm_ttfb_ms", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column("total_llm_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("max_llm_ttfb_ms", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column(
            "avg_llm_processing_time_ms",
            sa.Numeric(precision=10, scale=2),
            nullable=True,
        ),
        sa.Column("avg_stt_delay_ms", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column(
            "avg_user_to_bot_latency_ms",
            sa.Numeric(precision=10, scale=2),
            nullable=True,
        ),
        sa.Column(
            "max_user_to_bot_latency_ms",
            sa.Numeric(precision=10, scale=2),
            nullable=True,
        ),
        sa.Column(
            "avg_transcript_llm_gap_ms",
            sa.Numeric(precision=10, scale=2),
            nullable=True,
        ),
        sa.Column("avg_llm_to_tts_gap_ms", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column(
            "avg_total_pipeline_time_ms",
            sa.Numeric(precision=10, scale=2),
            nullable=True,
        ),
        sa.Column(
            "avg_rag_processing_time_ms",
            sa.Numeric(precision=10, scale=2),
            nullable=True,
        ),
        sa.Column(
            "avg_variable_extraction_time_ms",
            sa.Numeric(precision=10, scale=2),
            nullable=True,
        ),
        sa.Column("total_prompt_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total_completion_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total_tts_characters", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total_rag_retrievals", sa.Integer(), server_default="0", nullable=False),
        sa.Column("total_interruptions", sa.Integer(), server_default="0", nullable=False),
        sa.Column("total_tool_executions", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "call_type IN ('real_call', 'simulator', 'test')",
            name=op.f("ck_calls_call_type"),
        ),
        sa.CheckConstraint("direction IN ('inbound', 'outbound')", name=op.f("ck_calls_direction")),
        sa.CheckConstraint(
            "source <> 'runtime' OR (tenant_id IS NOT NULL AND agent_id IS NOT NULL)",
            name=op.f("ck_calls_runtime_has_tenant_and_agent"),
        ),
        sa.CheckConstraint("source IN ('runtime', 'azure')", name=op.f("ck_calls_source")),
        sa.CheckConstraint(
            "status IN ('in_progress', 'ended', 'error')", name=op.f("ck_calls_status")
        ),
        sa.CheckConstraint(
            "duration_seconds IS NULL OR duration_seconds >= 0",
            name=op.f("ck_calls_duration_not_negative"),
        ),
        sa.CheckConstraint("revision >= 1", name=op.f("ck_calls_revision_positive")),
        sa.ForeignKeyConstraint(
            ["behavioral_tactic_id"],
            ["behavioral_tactics.id"],
            name=op.f("fk_calls_behavioral_tactic_id_behavioral_tactics"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_calls_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_calls_organization_id_organizations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_calls")),
    )
    op.create_index("ix_calls_customer_id", "calls", ["customer_id"], unique=False)
    op.create_index("ix_calls_direction", "calls", ["direction"], unique=False)
    op.create_index("ix_calls_started_at", "calls", ["started_at"], unique=False)
    op.create_index("ix_calls_status", "calls", ["status"], unique=False)
    op.create_index("ix_calls_tenant_id_agent_id", "calls", ["tenant_id", "agent_id"], unique=False)
    op.create_index(
        "uq_calls_source_twilio_call_sid",
        "calls",
        ["source", "twilio_call_sid"],
        unique=True,
    )
    op.create_table(
        "organization_members",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("customer_id", sa.UUID(), nullable=False),
        sa.Column("role", sa.String(length=50), server_default="member", nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_organization_members_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_organization_members_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "organization_id", "customer_id", name=op.f("pk_organization_members")
        ),
    )
    op.create_index(
        "ix_organization_members_customer_id",
        "organization_members",
        ["customer_id"],
        unique=False,
    )
    op.create_table(
        "call_analysis",
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("call_id", sa.UUID(), nullable=False),
        sa.Column("sentiment", sa.String(length=16), nullable=True),
        sa.Column("sentiment_score", sa.Numeric(precision=5, scale=4), nullable=True),
        sa.Column("call_successful", sa.Boolean(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column(
            "topics",
            sa.ARRAY(sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column(
            "keywords_detected",
            sa.ARRAY(sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("model", sa.String(length=100), nullable=True),
        sa.Column(
            "analysis_data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "sentiment IS NULL OR sentiment IN ('positive', 'neutral', 'negative', 'mixed')",
            name=op.f("ck_call_analysis_sentiment"),
        ),
        sa.CheckConstraint(
            "sentiment_score IS NULL OR (sentiment_score >= -1 AND sentiment_score <= 1)",
            name=op.f("ck_call_analysis_sentiment_score_range"),
        ),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.call_id"],
            name=op.f("fk_call_analysis_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_call_analysis")),
    )
    op.create_index(
        "ix_call_analysis_call_successful",
        "call_analysis",
        ["call_successful"],
        unique=False,
    )
    op.create_index(
        "ix_call_analysis_keywords_detected",
        "call_analysis",
        ["keywords_detected"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index("ix_call_analysis_sentiment", "call_analysis", ["sentiment"], unique=False)
    op.create_table(
        "call_events",
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("call_id", sa.UUID(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("event_data", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("event_data_text", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.call_id"],
            name=op.f("fk_call_events_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_events")),
    )
    op.create_index("ix_call_events_call_id", "call_events", ["call_id", "sequence"], unique=False)
    op.create_index("ix_call_events_event_type", "call_events", ["event_type"], unique=False)
    op.create_table(
        "call_extracted_variables",
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("call_id", sa.UUID(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "variables_requested",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
        ),
        sa.Column(
            "variables_extracted",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
        ),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("processing_time_ms", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column("node_id", sa.String(length=255), nullable=True),
        sa.Column("turn_number", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.call_id"],
            name=op.f("fk_call_extracted_variables_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_extracted_variables")),
    )
    op.create_index(
        "ix_call_extracted_variables_call_id",
        "call_extracted_variables",
        ["call_id", "sequence"],
        unique=False,
    )
    op.create_table(
        "call_rag_chunks",
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("call_id", sa.UUID(), nullable=False),
        sa.Column("retrieval_id", sa.UUID(), nullable=False),
        sa.Column("retrieval_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("chunk_rank", sa.Integer(), nullable=False),
        sa.Column("chunk_id", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("document_id", sa.BigInteger(), nullable=True),
        sa.Column("filename", sa.String(length=500), nullable=True),
        sa.Column("s3_key", sa.String(length=1000), nullable=True),
        sa.Column("chunk_index", sa.Integer(), nullable=True),
        sa.Column("token_count", sa.Integer(), nullable=True),
        sa.Column("score", sa.Numeric(precision=5, scale=4), nullable=False),
        sa.Column("embedding", Vector(1536), nullable=True),
        sa.Column("embedding_model", sa.String(length=100), nullable=True),
        sa.CheckConstraint(
            "score >= 0 AND score <= 1", name=op.f("ck_call_rag_chunks_score_range")
        ),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.call_id"],
            name=op.f("fk_call_rag_chunks_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_rag_chunks")),
    )
    op.create_index("ix_call_rag_chunks_call_id", "call_rag_chunks", ["call_id"], unique=False)
    op.create_index(
        "ix_call_rag_chunks_embedding",
        "call_rag_chunks",
        ["embedding"],
        unique=False,
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.create_index(
        "ix_call_rag_chunks_retrieval_id_chunk_rank",
        "call_rag_chunks",
        ["retrieval_id", "chunk_rank"],
        unique=False,
    )
    op.create_table(
        "call_tool_executions",
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("call_id", sa.UUID(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tool_name", sa.String(length=255), nullable=False),
        sa.Column("request", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("request_text", sa.Text(), nullable=True),
        sa.Column("response_text", sa.Text(), nullable=True),
        sa.Column("success", sa.Boolean(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("node_id", sa.String(length=255), nullable=True),
        sa.Column("turn_number", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.call_id"],
            name=op.f("fk_call_tool_executions_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_tool_executions")),
    )
    op.create_index(
        "ix_call_tool_executions_call_id",
        "call_tool_executions",
        ["call_id", "sequence"],
        unique=False,
    )
    op.create_table(
        "call_transcripts",
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("call_id", sa.UUID(), nullable=False),
        sa.Column("transcript_text", sa.Text(), nullable=False),
        sa.Column("transcript_data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column(
            "search_vector",
            postgresql.TSVECTOR(),
            sa.Computed("to_tsvector('english'::regconfig, transcript_text)", persisted=True),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.call_id"],
            name=op.f("fk_call_transcripts_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_call_transcripts")),
    )
    op.create_index(
        "ix_call_transcripts_search_vector",
        "call_transcripts",
        ["search_vector"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_table(
        "call_user_interruptions",
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("call_id", sa.UUID(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("interrupted_at_turn", sa.Integer(), nullable=True),
        sa.Column("node_id", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.call_id"],
            name=op.f("fk_call_user_interruptions_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_user_interruptions")),
    )
    op.create_index(
        "ix_call_user_interruptions_call_id",
        "call_user_interruptions",
        ["call_id"],
        unique=False,
    )

    op.create_table(
        "job_runs",
        sa.Column("job", sa.String(length=100), nullable=False),
        sa.Column("last_status", sa.String(length=16), nullable=False),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_duration_ms", sa.Float(), nullable=True),
        sa.Column("runs", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "last_details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "last_status IN ('running', 'succeeded', 'failed', 'skipped')",
            name=op.f("ck_job_runs_last_status"),
        ),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_job_runs")),
    )


def downgrade() -> None:
    # Dropping a partitioned table drops its partitions with it.
    op.drop_table("job_runs")
    op.drop_index("ix_call_user_interruptions_call_id", table_name="call_user_interruptions")
    op.drop_table("call_user_interruptions")
    op.drop_index(
        "ix_call_transcripts_search_vector",
        table_name="call_transcripts",
        postgresql_using="gin",
    )
    op.drop_table("call_transcripts")
    op.drop_index("ix_call_tool_executions_call_id", table_name="call_tool_executions")
    op.drop_table("call_tool_executions")
    op.drop_index("ix_call_rag_chunks_retrieval_id_chunk_rank", table_name="call_rag_chunks")
    op.drop_index(
        "ix_call_rag_chunks_embedding",
        table_name="call_rag_chunks",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.drop_index("ix_call_rag_chunks_call_id", table_name="call_rag_chunks")
    op.drop_table("call_rag_chunks")
    op.drop_index("ix_call_extracted_variables_call_id", table_name="call_extracted_variables")
    op.drop_table("call_extracted_variables")
    op.drop_index("ix_call_events_event_type", table_name="call_events")
    op.drop_index("ix_call_events_call_id", table_name="call_events")
    op.drop_table("call_events")
    op.drop_index("ix_call_analysis_sentiment", table_name="call_analysis")
    op.drop_index(
        "ix_call_analysis_keywords_detected",
        table_name="call_analysis",
        postgresql_using="gin",
    )
    op.drop_index("ix_call_analysis_call_successful", table_name="call_analysis")
    op.drop_table("call_analysis")
    op.drop_index("ix_organization_members_customer_id", table_name="organization_members")
    op.drop_table("organization_members")
    op.drop_index("uq_calls_source_twilio_call_sid", table_name="calls")
    op.drop_index("ix_calls_tenant_id_agent_id", table_name="calls")
    op.drop_index("ix_calls_status", table_name="calls")
    op.drop_index("ix_calls_started_at", table_name="calls")
    op.drop_index("ix_calls_direction", table_name="calls")
    op.drop_index("ix_calls_customer_id", table_name="calls")
    op.drop_table("calls")
    op.drop_index(op.f("ix_agent_configs_organization_id"), table_name="agent_configs")
    op.drop_table("agent_configs")
    op.drop_index(
        "ix_system_prompts_active",
        table_name="system_prompts",
        postgresql_where=sa.text("is_active"),
    )
    op.drop_table("system_prompts")
    op.drop_table("organizations")
    op.drop_index("ix_failed_payloads_status_last_seen_at", table_name="failed_payloads")
    op.drop_index("ix_failed_payloads_call_id", table_name="failed_payloads")
    op.drop_table("failed_payloads")
    op.drop_index("ix_customers_phone_number", table_name="customers")
    op.drop_table("customers")
    op.drop_index(
        "ix_call_transitions_timestamp_brin",
        table_name="call_transitions",
        postgresql_using="brin",
    )
    op.drop_index("ix_call_transitions_from_node_id_to_node_id", table_name="call_transitions")
    op.drop_index("ix_call_transitions_call_id_sequence", table_name="call_transitions")
    op.drop_table("call_transitions")
    op.drop_index(
        "ix_call_rag_retrievals_timestamp_brin",
        table_name="call_rag_retrievals",
        postgresql_using="brin",
    )
    op.drop_index(
        "ix_call_rag_retrievals_call_id_query_sequence",
        table_name="call_rag_retrievals",
    )
    op.drop_table("call_rag_retrievals")
    op.drop_index(
        "ix_call_metrics_timestamp_brin",
        table_name="call_metrics",
        postgresql_using="brin",
    )
    op.drop_index("ix_call_metrics_call_id_metric_type", table_name="call_metrics")
    op.drop_table("call_metrics")
    op.drop_index(
        "ix_call_messages_timestamp_brin",
        table_name="call_messages",
        postgresql_using="brin",
    )
    op.drop_index("ix_call_messages_call_id_sequence", table_name="call_messages")
    op.drop_table("call_messages")
    op.drop_index(
        "ix_behavioral_tactics_config",
        table_name="behavioral_tactics",
        postgresql_using="gin",
        postgresql_ops={"config": "jsonb_path_ops"},
    )
    op.drop_table("behavioral_tactics")
    op.execute("DROP FUNCTION IF EXISTS set_updated_at()")
    op.execute("DROP EXTENSION IF EXISTS vector")
