"""Seed 000's SQL against callstore's schema: each statement as written, or — where seed 000's
``calls`` differs from the call store's table of the same name — the equivalent that
docs/migration.md gives ("Seed 000's SQL").

The statements are copied verbatim from seed 000 (its DDL, its example rows, its JSONB queries
and the validation queries of its migration plan). The example rows run on a fresh database,
the queries on the migrated cases of ``worker.dev.legacy_data``, where their answers are known.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import Database
from worker.dev import legacy_data as g

DOCS = Path(__file__).resolve().parents[3] / "docs" / "migration.md"

# -- seed 000, verbatim --------------------------------------------------------------------------

INSERT_TACTIC = """
INSERT INTO behavioral_tactics (name, archetype, config) VALUES (
    'aggressive_anchor',
    'Aggressive Anchor',
    '{
        "urgency_level": 5,
        "empathy_index": 2,
        "persistence_level": 4,
        "authority_level": 5,
        "opening_strategy": "direct_assertive",
        "tactics": [
            {
                "name": "High Anchor",
                "description": "Start with full balance to establish ceiling",
                "timing": "early"
            },
            {
                "name": "Deadline Pressure",
                "description": "Emphasize time-sensitive consequences",
                "timing": "mid"
            }
        ]
    }'::jsonb
);
"""

TACTICS_ABOVE_URGENCY_3 = """
SELECT name, config->>'urgency_level' as urgency
FROM behavioral_tactics
WHERE (config->>'urgency_level')::int > 3;
"""

TACTICS_WITH_HIGH_ANCHOR = """
SELECT name, archetype
FROM behavioral_tactics
WHERE config @> '{"tactics": [{"name": "High Anchor"}]}';
"""

INSERT_PROMPT = """
INSERT INTO system_prompts (name, environment, prompt_template, variables) VALUES (
    'default',
    'production',
    'You are Alex from TD Bank calling about account management.

Current Context:
- Customer: {{customer_name}}
- Balance: ${{balance}}
- Days Overdue: {{days_overdue}}

Instructions:
1. Verify identity before discussing account
2. Use tools for all operations
3. Follow compliance requirements',
    '{"customer_name": "Unknown", "balance": "0.00", "days_overdue": 0}'::jsonb
);
"""

INSERT_AGENT_CONFIG = """
INSERT INTO agent_configs (name, voice_config, behavior_config, tool_config) VALUES (
    'default_banking_agent',
    '{
        "tts_model": "sonic-english",
        "tts_voice": "professional-banking-male",
        "tts_speed": 1.0,
        "stt_model": "ink-whisper"
    }'::jsonb,
    '{
        "default_tactic": "balanced_progression",
        "max_call_duration": 600,
        "allow_interruptions": true
    }'::jsonb,
    '{
        "enabled_tools": ["verify_account", "get_customer_options", "process_payment"],
        "verification": {"max_attempts": 2},
        "payment": {"allow_sms_link": true}
    }'::jsonb
);
"""

VERIFY_CONFIGS = """
SELECT name, archetype, config->>'urgency_level' as urgency
FROM behavioral_tactics
ORDER BY name;
"""

COUNT_CALLS = """
SELECT COUNT(*) FROM calls;
"""

COUNT_ENTRIES = """
SELECT COUNT(*) FROM call_transcript_entries;
"""

INTEGRITY = """
SELECT
    c.call_sid,
    c.status,
    COUNT(t.id) as transcript_count
FROM calls c
LEFT JOIN call_transcript_entries t ON t.call_id = c.id
GROUP BY c.id, c.call_sid, c.status
LIMIT 10;
"""

TACTIC_OUTCOMES = """
SELECT
    bt.name as tactic,
    COUNT(c.id) as call_count,
    AVG(c.duration_seconds) as avg_duration,
    SUM(CASE WHEN c.outcome = 'payment_arranged' THEN 1 ELSE 0 END) as successes
FROM calls c
JOIN behavioral_tactics bt ON c.behavioral_tactic_id = bt.id
WHERE c.start_time >= NOW() - INTERVAL '30 days'
GROUP BY bt.id, bt.name
ORDER BY successes DESC;
"""

SCHEMA = (
    """
CREATE TABLE customers (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    phone_number VARCHAR(20) UNIQUE NOT NULL,
    name VARCHAR(100) NOT NULL,
    account_last_4 VARCHAR(4) NOT NULL,
    postal_code VARCHAR(10) NOT NULL,
    balance DECIMAL(10, 2) NOT NULL,
    days_overdue INTEGER DEFAULT 0,
    segment VARCHAR(20) NOT NULL,  -- 'premium', 'standard'
    language VARCHAR(5) DEFAULT 'en',  -- 'en', 'fr'
    metadata JSONB DEFAULT '{}',  -- Flexible additional data
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW()
);
""",
    """
CREATE TABLE organizations (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(100) NOT NULL,
    domain VARCHAR(100),
    settings JSONB DEFAULT '{}',
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW()
);
""",
    """
CREATE TABLE organization_members (
    organization_id UUID REFERENCES organizations(id) ON DELETE CASCADE,
    customer_id UUID REFERENCES customers(id) ON DELETE CASCADE,
    role VARCHAR(50) DEFAULT 'member',
    PRIMARY KEY (organization_id, customer_id)
);
""",
    """
CREATE TABLE calls (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    call_sid VARCHAR(100) UNIQUE NOT NULL,
    customer_id UUID REFERENCES customers(id) ON DELETE CASCADE,
    organization_id UUID REFERENCES organizations(id) ON DELETE SET NULL,
    call_type VARCHAR(20) NOT NULL,  -- 'real_call', 'simulator', 'test'
    direction VARCHAR(10) NOT NULL,  -- 'inbound', 'outbound'
    status VARCHAR(20) NOT NULL,  -- 'in_progress', 'completed', 'failed', 'no_answer'
    start_time TIMESTAMP NOT NULL,
    end_time TIMESTAMP,
    duration_seconds INTEGER,
    conversation_id VARCHAR(100),  -- ElevenLabs/Line SDK conversation ID
    behavioral_tactic_id UUID REFERENCES behavioral_tactics(id) ON DELETE SET NULL,
    outcome VARCHAR(50),  -- 'payment_arranged', 'callback_scheduled', 'transfer', etc.
    metadata JSONB DEFAULT '{}',  -- Additional call-specific data
    created_at TIMESTAMP DEFAULT NOW()
);
""",
    """
CREATE TABLE call_transcript_entries (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    call_id UUID REFERENCES calls(id) ON DELETE CASCADE,
    timestamp TIMESTAMP NOT NULL,
    entry_type VARCHAR(20) NOT NULL,  -- 'transcript', 'tool', 'event'
    sequence_number INTEGER NOT NULL,  -- For deterministic ordering

    -- Transcript fields (when entry_type = 'transcript')
    speaker VARCHAR(20),  -- 'agent', 'customer'
    text TEXT,

    -- Tool execution fields (when entry_type = 'tool')
    tool_name VARCHAR(50),
    tool_request JSONB,
    tool_response JSONB,
    tool_success BOOLEAN,
    tool_duration_ms INTEGER,

    -- Event fields (when entry_type = 'event')
    event_type VARCHAR(50),  -- 'call_connected', 'call_ended', 'error', etc.
    event_data JSONB,

    created_at TIMESTAMP DEFAULT NOW()
);
""",
    """
CREATE TABLE behavioral_tactics (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(50) UNIQUE NOT NULL,  -- 'aggressive_anchor', 'empathetic_gradual', etc.
    archetype VARCHAR(50) NOT NULL,  -- 'Aggressive Anchor', 'Empathetic Gradual', etc.
    description TEXT,
    config JSONB NOT NULL,  -- Full tactic configuration as JSON
    is_active BOOLEAN DEFAULT true,
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW()
);
""",
    """
CREATE TABLE system_prompts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(50) UNIQUE NOT NULL,  -- 'default', 'premium_customer', 'overdue_30_days', etc.
    environment VARCHAR(20) NOT NULL,  -- 'development', 'staging', 'production'
    prompt_template TEXT NOT NULL,  -- Template with {{variables}}
    variables JSONB DEFAULT '{}',  -- Default variable values
    version INTEGER DEFAULT 1,
    is_active BOOLEAN DEFAULT true,
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW()
);
""",
    """
CREATE TABLE agent_configs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID REFERENCES organizations(id) ON DELETE CASCADE,
    name VARCHAR(100) NOT NULL,
    voice_config JSONB NOT NULL,  -- Voice model, speed, emotion, etc.
    behavior_config JSONB NOT NULL,  -- Urgency, empathy, persistence levels
    tool_config JSONB NOT NULL,  -- Which tools are enabled, tool-specific settings
    is_active BOOLEAN DEFAULT true,
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW()
);
""",
)

INDEXES = (
    "CREATE INDEX idx_customers_phone ON customers(phone_number);",
    "CREATE INDEX idx_calls_customer_id ON calls(customer_id);",
    "CREATE INDEX idx_calls_start_time ON calls(start_time DESC);",
    "CREATE INDEX idx_calls_status ON calls(status);",
    "CREATE INDEX idx_calls_outcome ON calls(outcome);",
    "CREATE INDEX idx_transcript_call_id ON call_transcript_entries(call_id);",
    "CREATE INDEX idx_transcript_timestamp ON call_transcript_entries(timestamp);",
    "CREATE INDEX idx_transcript_sequence ON call_transcript_entries(call_id, sequence_number);",
    "CREATE INDEX idx_calls_customer_status ON calls(customer_id, status);",
    "CREATE INDEX idx_calls_org_status ON calls(organization_id, status) WHERE organization_id IS NOT NULL;",
    "CREATE INDEX idx_prompts_name_version ON system_prompts(name, version DESC);",
    "CREATE INDEX idx_prompts_active ON system_prompts(is_active) WHERE is_active = true;",
)

# -- the equivalents, where seed 000's ``calls`` is not the call store's -------------------------

#: Seed 000's names of ``calls`` columns that the call store names otherwise.
CALLS_COLUMNS = {
    "id": "call_id",
    "call_sid": "twilio_call_sid",
    "start_time": "started_at",
    "end_time": "ended_at",
}

INTEGRITY_HERE = """
SELECT
    c.twilio_call_sid AS call_sid,
    c.status,
    COUNT(t.id) as transcript_count
FROM calls c
LEFT JOIN call_transcript_entries t ON t.call_id = c.call_id
GROUP BY c.call_id, c.twilio_call_sid, c.status
LIMIT 10;
"""

TACTIC_OUTCOMES_HERE = """
SELECT
    bt.name as tactic,
    COUNT(c.call_id) as call_count,
    AVG(c.duration_seconds) as avg_duration,
    SUM(CASE WHEN c.outcome = 'payment_arranged' THEN 1 ELSE 0 END) as successes
FROM calls c
JOIN behavioral_tactics bt ON c.behavioral_tactic_id = bt.id
WHERE c.started_at >= NOW() - INTERVAL '30 days'
GROUP BY bt.id, bt.name
ORDER BY successes DESC;
"""

#: Seed 000's index -> the indexes that serve its reads here, as (table, index).
#: ``call_transcript_entries`` is a view: its indexes are those of the three tables under it.
ENTRY_TABLES = ("call_messages", "call_tool_executions", "call_events")
INDEX_EQUIVALENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "idx_customers_phone": (("customers", "ix_customers_phone_number"),),
    "idx_calls_customer_id": (("calls", "ix_calls_customer_id_status"),),
    "idx_calls_start_time": (("calls", "ix_calls_started_at"),),
    "idx_calls_status": (("calls", "ix_calls_status"),),
    "idx_calls_outcome": (("calls", "ix_calls_outcome"),),
    "idx_transcript_call_id": (
        ("call_messages", "ix_call_messages_call_id_sequence"),
        ("call_tool_executions", "ix_call_tool_executions_call_id"),
        ("call_events", "ix_call_events_call_id"),
    ),
    "idx_transcript_timestamp": (
        ("call_messages", "ix_call_messages_timestamp_brin"),
        ("call_tool_executions", "ix_call_tool_executions_timestamp_brin"),
        ("call_events", "ix_call_events_timestamp_brin"),
    ),
    "idx_transcript_sequence": (
        ("call_messages", "ix_call_messages_call_id_sequence"),
        ("call_tool_executions", "ix_call_tool_executions_call_id"),
        ("call_events", "ix_call_events_call_id"),
    ),
    "idx_calls_customer_status": (("calls", "ix_calls_customer_id_status"),),
    "idx_calls_org_status": (("calls", "ix_calls_organization_id_status"),),
    "idx_prompts_name_version": (("system_prompts", "uq_system_prompts_name_version"),),
    "idx_prompts_active": (("system_prompts", "ix_system_prompts_active"),),
}
#: Where the view's columns come from in each table under it.
ENTRY_COLUMNS = {"sequence_number": "sequence"}
#: Seed indexes whose equivalent indexes other columns, and the predicate that holds the seed's.
BY_PREDICATE = {"idx_prompts_active": "WHERE is_active"}

_COLUMN = re.compile(r"^ {4}(\w+) [A-Z]", re.MULTILINE)
_TABLE = re.compile(r"CREATE TABLE (\w+)")
_INDEX = re.compile(r"CREATE INDEX (\w+) ON (\w+)\(([^)]*)\)( WHERE .*)?;")


def _rows(conn: psycopg.Connection[Any], statement: str) -> list[tuple[Any, ...]]:
    return conn.execute(statement).fetchall()


@pytest.fixture
def migrated(cases_migrated: Database) -> Iterator[psycopg.Connection[Any]]:
    """The migrated cases (shared by the module: only read)."""
    with cases_migrated.connect(autocommit=True) as connection:
        yield connection


# -- the schema ------------------------------------------------------------------------------


def test_every_column_of_seed_000s_tables_is_here(conn: psycopg.Connection[Any]) -> None:
    """``CREATE TABLE`` cannot run as written on a store that has the tables: every column the
    seed declares exists here (in ``calls``, under the names of ``CALLS_COLUMNS``)."""
    found = {
        (table, column)
        for table, column in _rows(
            conn,
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public'",
        )
    }
    missing = []
    for statement in SCHEMA:
        match = _TABLE.search(statement)
        assert match is not None
        table = match.group(1)
        for column in _COLUMN.findall(statement):
            if column == "PRIMARY":
                continue
            name = CALLS_COLUMNS.get(column, column) if table == "calls" else column
            if (table, name) not in found:
                missing.append(f"{table}.{column}")
    assert missing == []
    assert len(SCHEMA) == 8


def test_every_index_of_seed_000_has_its_equivalent(conn: psycopg.Connection[Any]) -> None:
    """Each seed index's columns lead an index here on the same table (or on each table under
    the ``call_transcript_entries`` view); its predicate, if any, is implied by the seed's."""
    indexes = {
        name: (table, definition)
        for table, name, definition in _rows(
            conn, "SELECT tablename, indexname, indexdef FROM pg_indexes"
        )
    }
    assert len(INDEXES) == len(INDEX_EQUIVALENTS) == 12
    for statement in INDEXES:
        match = _INDEX.fullmatch(statement)
        assert match is not None, statement
        seed_name, seed_table, seed_columns, _where = match.groups()
        columns = [c.split()[0] for c in seed_columns.split(",")]
        for table, name in INDEX_EQUIVALENTS[seed_name]:
            assert name in indexes, f"{seed_name}: {name} does not exist"
            on, definition = indexes[name]
            assert on == table
            if seed_table == "calls":
                columns = [CALLS_COLUMNS.get(c, c) for c in columns]
            if seed_table == "call_transcript_entries":
                columns = [ENTRY_COLUMNS.get(c, c) for c in columns]
            if seed_name in BY_PREDICATE:  # the active prompts: by name, among the active
                assert definition.endswith(BY_PREDICATE[seed_name]), definition
                continue
            indexed = definition.split(" USING ", 1)[1]
            indexed = indexed[indexed.index("(") + 1 : indexed.index(")")]
            leading = [c.strip().strip('"') for c in indexed.split(",")][: len(columns)]
            assert leading == columns, (seed_name, definition)


# -- the example rows, on a fresh database ----------------------------------------------------


def test_the_example_rows_and_the_jsonb_queries_run_as_written(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute(INSERT_TACTIC)
    assert _rows(conn, TACTICS_ABOVE_URGENCY_3) == [("aggressive_anchor", "5")]
    assert _rows(conn, TACTICS_WITH_HIGH_ANCHOR) == [("aggressive_anchor", "Aggressive Anchor")]

    conn.execute(INSERT_PROMPT)  # failed before revision 0008: content_sha256 was required
    template, digest, version, active = _rows(
        conn,
        "SELECT prompt_template, content_sha256, version, is_active FROM system_prompts"
        " WHERE name = 'default'",
    )[0]
    assert template.startswith("You are Alex from TD Bank")
    assert (digest, version, active) == (hashlib.sha256(template.encode()).hexdigest(), 1, True)

    conn.execute(INSERT_AGENT_CONFIG)
    ((tools,),) = _rows(conn, "SELECT tool_config FROM agent_configs")
    assert tools["enabled_tools"] == ["verify_account", "get_customer_options", "process_payment"]


# -- the migration plan's validation queries, on migrated data --------------------------------


def test_the_validation_queries_run_as_written(migrated: psycopg.Connection[Any]) -> None:
    tactics = _rows(migrated, VERIFY_CONFIGS)
    assert [name for name, _archetype, _urgency in tactics] == sorted(g.TACTICS)  # "15 tactics"
    assert all(urgency in {"1", "2", "3", "4", "5"} for *_, urgency in tactics)
    assert _rows(migrated, COUNT_CALLS) == [(11,)]
    assert _rows(migrated, COUNT_ENTRIES) == [(20,)]
    urgent = _rows(migrated, TACTICS_ABOVE_URGENCY_3)
    assert sorted(urgent) == sorted((n, u) for n, _a, u in tactics if int(u) > 3)
    assert len(_rows(migrated, TACTICS_WITH_HIGH_ANCHOR)) == 15


def test_where_calls_differs_the_documented_equivalent_runs(
    migrated: psycopg.Connection[Any],
) -> None:
    for as_written in (INTEGRITY, TACTIC_OUTCOMES):  # seed 000's calls has an id column
        with pytest.raises(psycopg.errors.UndefinedColumn, match=r"column c\.id does not exist"):
            migrated.execute(as_written)

    counts = {
        sid: count
        for sid, _status, count in _rows(migrated, INTEGRITY_HERE.replace("LIMIT 10", ""))
    }
    assert len(_rows(migrated, INTEGRITY_HERE)) == 10
    assert counts[g.CALL_FULL] == 10  # 4 messages, 3 tool executions, 3 events
    assert counts[g.CALL_ORPHAN] == 3
    assert counts[g.CALL_IN_PROGRESS] == 0

    assert _rows(migrated, TACTIC_OUTCOMES_HERE) == []  # the cases are years old
    assert _rows(migrated, TACTIC_OUTCOMES_HERE.replace("30 days", "100 years")) == [
        ("aggressive_anchor", 1, Decimal("125.0000000000000000"), 1)
    ]


def test_the_entries_view_reads_as_seed_000s_table(migrated: psycopg.Connection[Any]) -> None:
    rows = _rows(
        migrated,
        "SELECT sequence_number, entry_type, speaker, tool_name, tool_request, tool_success,"
        " event_type, event_data FROM call_transcript_entries t JOIN calls c"
        " ON c.call_id = t.call_id WHERE c.twilio_call_sid = '" + g.CALL_FULL + "'"
        " ORDER BY sequence_number",
    )
    assert [(r[0], r[1], r[2]) for r in rows[:3]] == [
        (1, "transcript", "agent"),
        (2, "transcript", "customer"),
        (4, "tool", None),
    ]
    cut = rows[3]  # the cut request is kept as a JSON string
    assert (cut[3], cut[4], cut[5]) == (
        "process_payment",
        '{"amount": 120.5, "card_token": "tok_4111111',
        False,
    )
    error = next(r for r in rows if r[6] == "error")
    assert error[7] == "Traceback (most recent call last): TimeoutError"


def test_the_docs_give_each_equivalent() -> None:
    text = " ".join(DOCS.read_text().split())
    for statement in (INTEGRITY_HERE, TACTIC_OUTCOMES_HERE):
        assert " ".join(statement.split()) in text
