"""Persisting one call — the ``calls`` row and every child row — inside the caller's transaction.

The order of work is what makes a redelivery harmless:

1. upsert the ``calls`` row with ``ON CONFLICT ... WHERE calls.revision < EXCLUDED.revision``.
   The row lock this takes serializes concurrent deliveries of the same call; a duplicate or an
   older revision matches no row and the function returns without writing anything else. The
   same revision with another content (``content_digest``, the SHA-256 of the payload's JSON) is
   a *conflict*, settled by one rule whatever the order of arrival: the later ``finalized_at``
   is kept, and on a tie the greater digest. Either way the result says so, for the finalize
   service to record (``worker.calls.conflicts``);
2. if an older revision was replaced, delete its children;
3. write the children with COPY (the fastest path measured, see ``docs/benchmarks.md``), in
   the column order ``worker.calls.child_tables`` declares;
4. (re)build the transcript from the messages just written (``worker.calls.transcripts``).

Nothing here commits: the finalize service owns the transaction, so either all of the call is
stored or none of it is.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from models.enums import CallSource
from models.payload import CallPayload
from worker.calls import transcripts
from worker.calls.child_tables import ROW_TABLES, TRANSCRIPTS, ChildTable
from worker.calls.summary import compute_summary, stored_values

CALL_COLUMNS: tuple[str, ...] = (
    "call_id", "tenant_id", "agent_id", "agent_version", "agent_name", "from_number",
    "to_number", "twilio_call_sid", "twilio_stream_sid", "recording_enabled", "recording_sid",
    "recording_url", "direction", "status", "error_message", "started_at", "ended_at",
    "duration_seconds", "initial_node", "final_node", "source", "revision", "finalized_at",
    "content_digest",
    "replaced_characters",
)  # fmt: skip

#: Namespace of the deterministic ids of RAG retrievals (their chunks point at them).
RETRIEVAL_NAMESPACE = uuid.UUID("6f0e7a8e-3c55-4d1b-9a51-2f0c1b8a4d10")


class PersistOutcome(StrEnum):
    INSERTED = "inserted"
    REPLACED = "replaced"
    UNCHANGED = "unchanged"  # same or older revision already stored: a duplicate delivery
    CONFLICT = "conflict"  # same revision, other content, and the stored one is kept


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two contents under one (call id, revision), and which the rule kept."""

    call_id: uuid.UUID
    revision: int
    kept: str  # "incoming" or "stored"
    stored_digest: str
    incoming_digest: str
    stored_finalized_at: Any
    incoming_finalized_at: Any


@dataclass(frozen=True, slots=True)
class PersistResult:
    outcome: PersistOutcome
    rows: dict[str, int] = field(default_factory=dict)
    conflict: Conflict | None = None

    @property
    def row_count(self) -> int:
        return sum(self.rows.values())


@dataclass(slots=True)
class CallRows:
    """Everything one call writes, as positional rows per table, in the column order of
    ``worker.calls.child_tables.ROW_TABLES``."""

    call: dict[str, Any]
    children: dict[str, list[tuple[Any, ...]]]

    def counts(self) -> dict[str, int]:
        """Rows per table that writing these rows stores, the derived transcript included."""
        counts = {"calls": 1}
        counts.update({table: len(r) for table, r in self.children.items() if r})
        if self.children["call_messages"]:  # a transcript exists exactly when a message does
            counts[TRANSCRIPTS.name] = 1
        return counts


def _json(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def _vector(values: Sequence[float] | None) -> str | None:
    return None if values is None else "[" + ",".join(repr(float(v)) for v in values) + "]"


def build_rows(payload: CallPayload, *, digest: str | None = None) -> CallRows:
    """The rows of ``payload`` (pure: no database), including the computed summary;
    ``digest`` is the SHA-256 of the payload's JSON (None: conflicts are not detected).

    Enum members go into rows as they are: they are ``StrEnum`` values, which psycopg writes as
    text, and skipping ``.value`` is measurable on a call of a thousand rows.
    """
    cid = payload.call_id
    values = stored_values(payload)
    duration = None
    if payload.ended_at is not None:
        duration = max(0, int((payload.ended_at - payload.started_at).total_seconds()))
    call: dict[str, Any] = {
        "call_id": cid,
        "tenant_id": payload.tenant_id,
        "agent_id": payload.agent_id,
        "agent_version": payload.agent_version,
        "agent_name": payload.agent_name,
        "from_number": payload.from_number,
        "to_number": payload.to_number,
        "twilio_call_sid": payload.twilio_call_sid,
        "twilio_stream_sid": payload.twilio_stream_sid,
        "recording_enabled": payload.recording_enabled,
        "recording_sid": payload.recording_sid,
        "recording_url": payload.recording_url,
        "direction": payload.direction,
        "status": payload.status,
        "error_message": payload.error_message,
        "started_at": payload.started_at,
        "ended_at": payload.ended_at,
        "duration_seconds": duration,
        "initial_node": payload.initial_node,
        "final_node": payload.final_node,
        "source": CallSource.RUNTIME.value,
        "revision": payload.revision,
        "finalized_at": payload.finalized_at,
        "content_digest": digest,
        "replaced_characters": payload.replaced_characters,
        **compute_summary(payload, values),
    }

    retrievals = []
    chunks = []
    for index, r in enumerate(payload.rag_retrievals):
        rid = uuid.uuid5(RETRIEVAL_NAMESPACE, f"{cid}/{index}")
        retrievals.append(
            (rid, cid, r.timestamp, r.query_sequence, r.query_text,
             r.search_mode, len(r.chunks), r.top_k,
             r.processing_time_ms, Jsonb(r.query_params), r.node_id, r.turn_number)
        )  # fmt: skip
        for c in r.chunks:
            chunks.append(
                (cid, rid, r.timestamp, c.chunk_rank, c.chunk_id, c.content, c.document_id,
                 c.filename, c.s3_key, c.chunk_index, c.token_count, c.score,
                 _vector(c.embedding), c.embedding_model, Jsonb(c.metadata))
            )  # fmt: skip

    a = payload.analysis
    children: dict[str, list[tuple[Any, ...]]] = {
        "call_messages": [
            (cid, m.sequence, m.timestamp, m.role, m.content, m.node_id, m.turn_number,
             m.was_interrupted)
            for m in payload.messages
        ],
        "call_transitions": [
            (cid, t.sequence, t.timestamp, t.from_node_id, t.to_node_id, t.reason, t.condition,
             t.turn_number, t.from_node_name, t.to_node_name)
            for t in payload.transitions
        ],
        "call_metrics": [
            (cid, m.timestamp, m.metric_type, value, m.processor, m.turn_number, m.node_id)
            for m, value in zip(payload.metrics, values, strict=True)
        ],
        "call_rag_retrievals": retrievals,
        "call_rag_chunks": chunks,
        "call_extracted_variables": [
            (cid, v.sequence, v.timestamp, Jsonb(v.variables_requested),
             Jsonb(v.variables_extracted), v.success, v.processing_time_ms, v.node_id,
             v.turn_number)
            for v in payload.variable_extractions
        ],
        "call_user_interruptions": [
            (cid, i.timestamp, i.interrupted_at_turn, i.node_id) for i in payload.interruptions
        ],
        "call_tool_executions": [
            (cid, t.sequence, t.timestamp, t.tool_name, _json(t.request), _json(t.response),
             t.success, t.duration_ms, t.node_id, t.turn_number)
            for t in payload.tool_executions
        ],
        "call_events": [
            (cid, e.sequence, e.timestamp, e.event_type, _json(e.event_data))
            for e in payload.events
        ],
        "call_analysis": []
        if a is None
        else [
            (cid, a.sentiment, a.sentiment_score,
             a.call_successful, a.summary, a.topics, a.keywords_detected, a.model,
             Jsonb(a.analysis_data))
        ],
    }  # fmt: skip
    return CallRows(call=call, children=children)


def _upsert_call_sql(columns: Sequence[str]) -> sql.Composed:
    """The upsert of a call row. It replaces the stored row for a higher revision, or for the
    same revision with another digest when the incoming one wins the rule (a NULL digest on
    either side, as for migrated calls, never conflicts); it returns what it replaced."""
    updates = [c for c in columns if c != "call_id"]
    return sql.SQL(
        "INSERT INTO calls ({cols}, persisted_at) VALUES ({vals}, clock_timestamp())"
        " ON CONFLICT (call_id) DO UPDATE SET {sets}, persisted_at = clock_timestamp()"
        " WHERE calls.revision < EXCLUDED.revision"
        " OR (calls.revision = EXCLUDED.revision"
        " AND calls.content_digest <> EXCLUDED.content_digest"
        " AND (EXCLUDED.finalized_at, EXCLUDED.content_digest)"
        " > (calls.finalized_at, calls.content_digest))"
        " RETURNING (xmax = 0) AS inserted, old.revision, old.content_digest, old.finalized_at"
    ).format(
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        vals=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        sets=sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in updates
        ),
    )


#: Below this many rows a table is written with a pipelined, prepared INSERT instead of COPY:
#: each COPY costs a round trip and a setup on the server, which dominates for a handful of rows.
COPY_MIN_ROWS = 64

#: Writes one table's rows of a call inside the open transaction.
ChildWriter = Callable[[psycopg.Cursor[Any], str, list[tuple[Any, ...]]], None]


def copy_sql(table: ChildTable, *, binary: bool) -> sql.Composed:
    return sql.SQL("COPY {table} ({cols}) FROM STDIN{fmt}").format(
        table=sql.Identifier(table.name),
        cols=sql.SQL(", ").join(map(sql.Identifier, table.column_names)),
        fmt=sql.SQL(" (FORMAT BINARY)" if binary else ""),
    )


def insert_sql(table: ChildTable) -> sql.Composed:
    return sql.SQL("INSERT INTO {table} ({cols}) VALUES ({vals})").format(
        table=sql.Identifier(table.name),
        cols=sql.SQL(", ").join(map(sql.Identifier, table.column_names)),
        vals=sql.SQL(", ").join(sql.Placeholder() * len(table.columns)),
    )


# The statements are composed once and kept as bytes: composing a ``sql.Composed`` again on
# every execution cost about a tenth of a call's persist time.
_COPY_SQL = {t.name: copy_sql(t, binary=t.binary_copy).as_bytes(None) for t in ROW_TABLES}
_COPY_TYPES = {t.name: list(t.pg_types) if t.binary_copy else None for t in ROW_TABLES}
_INSERT_SQL = {t.name: insert_sql(t).as_bytes(None) for t in ROW_TABLES}
#: The call's start announcement is settled by its finalize (``worker.calls.announcements``).
_SETTLE_ANNOUNCEMENT = b"DELETE FROM call_announcements WHERE call_id = %s"
#: On replacement: the transcript is left to ``transcripts.REBUILD_SQL``, which rewrites it only
#: if the new messages make it differ.
_DELETE_SQL = [
    sql.SQL("DELETE FROM {table} WHERE call_id = %s")
    .format(table=sql.Identifier(t.name))
    .as_bytes(None)
    for t in ROW_TABLES
]
_UPSERT_CACHE: dict[tuple[str, ...], bytes] = {}
#: The stored row a delivery did not replace (locked by the upsert until the transaction ends).
_STORED_IDENTITY = b"SELECT revision, content_digest, finalized_at FROM calls WHERE call_id = %s"


def copy_children(cursor: psycopg.Cursor[Any], table: str, rows: list[tuple[Any, ...]]) -> None:
    """COPY ``rows`` into ``table`` (declared column order), in binary where the types allow."""
    types = _COPY_TYPES[table]
    with cursor.copy(_COPY_SQL[table]) as copy:
        if types is not None:
            copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def _write_children(
    conn: psycopg.Connection[Any],
    cursor: psycopg.Cursor[Any],
    call_id: Any,
    children: dict[str, Any],
) -> None:
    """The measured-fastest mix: COPY for the big tables, one pipeline of prepared INSERTs for
    the small ones (see docs/benchmarks.md), with the transcript built and the announcement
    settled in that pipeline."""
    small = []
    for table, rows in children.items():
        if len(rows) >= COPY_MIN_ROWS:
            copy_children(cursor, table, rows)
        elif rows:
            small.append((table, rows))
    with conn.pipeline():
        for table, rows in small:
            cursor.executemany(_INSERT_SQL[table], rows)
        cursor.execute(transcripts.REBUILD_SQL, {"call_ids": [call_id]})
        cursor.execute(_SETTLE_ANNOUNCEMENT, (call_id,))


def write_call(
    conn: psycopg.Connection[Any], rows: CallRows, *, write_children: ChildWriter | None = None
) -> PersistResult:
    """Write ``rows`` in ``conn``'s open transaction (see the module docstring for the order).

    ``write_children`` replaces the default strategy for every table (the benchmarks use it to
    compare COPY, multi-row INSERT and executemany).
    """
    columns = tuple(rows.call)
    statement = _UPSERT_CACHE.get(columns)
    if statement is None:
        statement = _UPSERT_CACHE.setdefault(columns, _upsert_call_sql(columns).as_bytes(None))
    with conn.cursor() as cursor:
        cursor.execute(statement, tuple(rows.call.values()))
        written = cursor.fetchone()
        if written is None:
            cursor.execute(_STORED_IDENTITY, (rows.call["call_id"],))
            stored = cursor.fetchone()
            conflict = _conflict(rows.call, stored, kept="stored")
            if conflict is not None:
                return PersistResult(PersistOutcome.CONFLICT, conflict=conflict)
            return PersistResult(PersistOutcome.UNCHANGED)
        outcome = PersistOutcome.INSERTED if written[0] else PersistOutcome.REPLACED
        replaced = None if written[0] else _conflict(rows.call, written[1:], kept="incoming")
        if outcome is PersistOutcome.REPLACED:
            call_id = rows.call["call_id"]
            with conn.pipeline():
                for delete in _DELETE_SQL:
                    cursor.execute(delete, (call_id,))
        if write_children is None:
            _write_children(conn, cursor, rows.call["call_id"], rows.children)
        else:
            for table, table_rows in rows.children.items():
                if table_rows:
                    write_children(cursor, table, table_rows)
            cursor.execute(transcripts.REBUILD_SQL, {"call_ids": [rows.call["call_id"]]})
            cursor.execute(_SETTLE_ANNOUNCEMENT, (rows.call["call_id"],))
    return PersistResult(outcome, rows.counts(), conflict=replaced)


def _conflict(call: dict[str, Any], stored: Sequence[Any] | None, *, kept: str) -> Conflict | None:
    """The conflict between ``call`` and the ``stored`` (revision, digest, finalized_at) of the
    same call, if they are one revision with two digests."""
    if stored is None:
        return None
    revision, digest, finalized_at = stored
    incoming = call.get("content_digest")
    if revision != call["revision"] or digest is None or incoming is None or digest == incoming:
        return None
    return Conflict(
        call_id=call["call_id"],
        revision=revision,
        kept=kept,
        stored_digest=digest,
        incoming_digest=incoming,
        stored_finalized_at=finalized_at,
        incoming_finalized_at=call["finalized_at"],
    )


def persist_call(
    conn: psycopg.Connection[Any], payload: CallPayload, *, digest: str | None = None
) -> PersistResult:
    """Store ``payload`` in ``conn``'s open transaction; idempotent per (call_id, revision),
    and per content when ``digest`` (of the payload's JSON) is given."""
    return write_call(conn, build_rows(payload, digest=digest))
