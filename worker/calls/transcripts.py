"""The searchable transcript of a call, defined once: derived in PostgreSQL from its stored messages.

Every path that writes a transcript runs ``REBUILD_SQL`` after the messages are stored, in the
same transaction: a live finalize (``worker.calls.persist``, in the pipeline of the small
tables), the Azure migration (``worker.azure.writer.Writer.finish_calls``) and the consistency
repair (``worker.consistency.repair``). So a live, a migrated and a repaired call with the same
messages have the same ``call_transcripts`` row, byte for byte.

The row, from the call's ``call_messages`` in ``sequence`` order (ties in the order they were
written):

* ``transcript_text``: one ``role: content`` line per message, joined by ``\\n``;
* ``transcript_data``: the messages as a JSON array of objects with ``sequence``,
  ``timestamp``, ``role``, ``content``, ``node_id`` and ``turn_number``. The timestamp is
  rendered in UTC as Python's ``isoformat`` renders an aware UTC datetime
  (``2024-03-05T14:30:02+00:00``, or ``...02.250000+00:00`` when it has microseconds), whatever
  offset the runtime sent: PostgreSQL keeps the instant, not the offset;
* ``message_count``: the number of messages.

A call has a transcript exactly when it has at least one message: the statement makes or
updates the row of each call that has messages, and removes the row of a call that has none
(a revision that dropped every message, a migrated call whose entries moved away). The
consistency check (``worker.consistency.checks.transcripts``) asks for the same. A row is
written only when it differs from the stored one, so rebuilding what is already right changes
nothing, not even ``updated_at``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from worker.calls.child_tables import TRANSCRIPTS

#: Timestamps as ``datetime.isoformat`` renders them in UTC (microseconds only when there are any).
_UTC_ISO = (
    "to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
    " || CASE WHEN extract(microseconds FROM timestamp)::bigint %% 1000000 = 0 THEN ''"
    " ELSE to_char(timestamp AT TIME ZONE 'UTC', '.US') END || '+00:00'"
)

#: Each column of ``call_transcripts``, as computed from one call's messages (grouped by call).
_COLUMNS: dict[str, str] = {
    "call_id": "call_id",
    "transcript_text": "string_agg(role || ': ' || content, E'\\n' ORDER BY sequence, id)",
    "transcript_data": (
        "jsonb_agg(jsonb_build_object('sequence', sequence, 'timestamp', " + _UTC_ISO + ","
        " 'role', role, 'content', content, 'node_id', node_id, 'turn_number', turn_number)"
        " ORDER BY sequence, id)"
    ),
    "message_count": "count(*)",
}
if tuple(_COLUMNS) != TRANSCRIPTS.column_names:  # pragma: no cover - caught at import
    raise RuntimeError("worker.calls.transcripts does not compute the declared columns")

_DERIVED = [c for c in TRANSCRIPTS.column_names if c != "call_id"]

#: (Re)build the transcripts of the calls ``%(call_ids)s`` (``uuid[]``) from their messages;
#: its row count is the number of rows made or changed.
REBUILD_SQL: bytes = (
    sql.SQL(
        "WITH built AS (SELECT {computed} FROM call_messages"
        " WHERE call_id = ANY(%(call_ids)s) GROUP BY call_id),"
        " emptied AS (DELETE FROM {table} t WHERE t.call_id = ANY(%(call_ids)s)"
        " AND NOT EXISTS (SELECT 1 FROM built b WHERE b.call_id = t.call_id))"
        " INSERT INTO {table} AS t ({columns}) SELECT {columns} FROM built"
        " ON CONFLICT (call_id) DO UPDATE SET {sets}"
        " WHERE ({stored}) IS DISTINCT FROM ({excluded})"
    )
    .format(
        computed=sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(sql.SQL(expression), sql.Identifier(name))
            for name, expression in _COLUMNS.items()
        ),
        table=sql.Identifier(TRANSCRIPTS.name),
        columns=sql.SQL(", ").join(map(sql.Identifier, TRANSCRIPTS.column_names)),
        sets=sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in _DERIVED
        ),
        stored=sql.SQL(", ").join(sql.Identifier("t", c) for c in _DERIVED),
        excluded=sql.SQL(", ").join(sql.Identifier("excluded", c) for c in _DERIVED),
    )
    .as_bytes(None)
)


def rebuild(conn: psycopg.Connection[Any], call_ids: Iterable[UUID]) -> int:
    """Bring the transcripts of ``call_ids`` in line with their stored messages, in ``conn``'s
    transaction; the number of rows made or changed."""
    ids = sorted(set(call_ids))
    if not ids:
        return 0
    return conn.execute(REBUILD_SQL, {"call_ids": ids}, prepare=True).rowcount
