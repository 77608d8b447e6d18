"""The child tables of a call, each declared once: its columns in order, with their types.

Everything that needs a child table's columns builds them from here: the COPY, INSERT and
DELETE statements of ``worker.calls.persist``, the transcript statement of
``worker.calls.transcripts``, the benchmarks and the tests. Name and type travel together
because binary COPY sends values by position with the types given: two ``varchar`` columns
listed in one order and typed in another would be accepted and store each other's values.

``worker.calls.persist.build_rows`` must make its tuples in the order declared here; a test
(``tests/integration/test_child_columns.py``) stores a call whose every field carries its own
name and reads it back by column name, so a tuple out of order fails. Another
(``tests/unit/test_child_tables.py``) compares these declarations with the SQLModel tables.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    #: The type name binary COPY is given (``psycopg.Copy.set_types``).
    pg_type: str


@dataclass(frozen=True, slots=True)
class ChildTable:
    name: str
    columns: tuple[Column, ...]
    #: Whether rows can be sent by binary COPY: psycopg has no binary dumper for pgvector's
    #: ``vector`` without extra registration, so a table holding one uses text COPY.
    binary_copy: bool = True

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def pg_types(self) -> tuple[str, ...]:
        return tuple(c.pg_type for c in self.columns)


def _table(name: str, *columns: tuple[str, str], binary_copy: bool = True) -> ChildTable:
    return ChildTable(name, tuple(Column(n, t) for n, t in columns), binary_copy)


#: The tables whose rows ``build_rows`` makes from a payload, in the order they are written.
ROW_TABLES: tuple[ChildTable, ...] = (
    _table(
        "call_messages",
        ("call_id", "uuid"), ("sequence", "int4"), ("timestamp", "timestamptz"),
        ("role", "varchar"), ("content", "text"), ("node_id", "varchar"),
        ("turn_number", "int4"), ("was_interrupted", "bool"),
    ),
    _table(
        "call_transitions",
        ("call_id", "uuid"), ("sequence", "int4"), ("timestamp", "timestamptz"),
        ("from_node_id", "varchar"), ("to_node_id", "varchar"), ("reason", "varchar"),
        ("condition", "varchar"), ("turn_number", "int4"), ("from_node_name", "varchar"),
        ("to_node_name", "varchar"),
    ),
    _table(
        "call_metrics",
        ("call_id", "uuid"), ("timestamp", "timestamptz"), ("metric_type", "varchar"),
        ("value", "numeric"), ("processor", "varchar"), ("turn_number", "int4"),
        ("node_id", "varchar"),
    ),
    _table(
        "call_rag_retrievals",
        ("id", "uuid"), ("call_id", "uuid"), ("timestamp", "timestamptz"),
        ("query_sequence", "int4"), ("query_text", "text"), ("search_mode", "varchar"),
        ("chunks_retrieved", "int4"), ("top_k", "int4"), ("processing_time_ms", "numeric"),
        ("query_params", "jsonb"), ("node_id", "varchar"), ("turn_number", "int4"),
    ),
    _table(
        "call_rag_chunks",
        ("call_id", "uuid"), ("retrieval_id", "uuid"), ("retrieval_timestamp", "timestamptz"),
        ("chunk_rank", "int4"), ("chunk_id", "int8"), ("content", "text"),
        ("document_id", "int8"), ("filename", "varchar"), ("s3_key", "varchar"),
        ("chunk_index", "int4"), ("token_count", "int4"), ("score", "numeric"),
        ("embedding", "vector"), ("embedding_model", "varchar"), ("metadata", "jsonb"),
        binary_copy=False,
    ),
    _table(
        "call_extracted_variables",
        ("call_id", "uuid"), ("sequence", "int4"), ("timestamp", "timestamptz"),
        ("variables_requested", "jsonb"), ("variables_extracted", "jsonb"), ("success", "bool"),
        ("processing_time_ms", "numeric"), ("node_id", "varchar"), ("turn_number", "int4"),
    ),
    _table(
        "call_user_interruptions",
        ("call_id", "uuid"), ("timestamp", "timestamptz"), ("interrupted_at_turn", "int4"),
        ("node_id", "varchar"),
    ),
    _table(
        "call_tool_executions",
        ("call_id", "uuid"), ("sequence", "int4"), ("timestamp", "timestamptz"),
        ("tool_name", "varchar"), ("request", "jsonb"), ("response", "jsonb"), ("success", "bool"),
        ("duration_ms", "int4"), ("node_id", "varchar"), ("turn_number", "int4"),
    ),
    _table(
        "call_events",
        ("call_id", "uuid"), ("sequence", "int4"), ("timestamp", "timestamptz"),
        ("event_type", "varchar"), ("event_data", "jsonb"),
    ),
    _table(
        "call_analysis",
        ("call_id", "uuid"), ("sentiment", "varchar"), ("sentiment_score", "numeric"),
        ("call_successful", "bool"), ("summary", "text"), ("topics", "text[]"),
        ("keywords_detected", "text[]"), ("model", "varchar"), ("analysis_data", "jsonb"),
    ),
)  # fmt: skip

#: The searchable transcript: derived in PostgreSQL from the call's stored messages
#: (``worker.calls.transcripts``), never built from a payload.
TRANSCRIPTS = _table(
    "call_transcripts",
    ("call_id", "uuid"), ("transcript_text", "text"), ("transcript_data", "jsonb"),
    ("message_count", "int4"),
)  # fmt: skip

#: Every child table of a call.
CHILD_TABLES: tuple[ChildTable, ...] = (*ROW_TABLES, TRANSCRIPTS)

#: ``calls`` and every table that holds rows of a call.
CALL_TABLES: tuple[str, ...] = ("calls", *(t.name for t in CHILD_TABLES))
