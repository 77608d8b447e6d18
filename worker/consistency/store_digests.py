"""The PostgreSQL side of the Azure comparison: call digests computed in SQL.

``worker.consistency.canonical`` defines the digests; this module computes them from the
stored rows of migrated calls (``calls.source = 'azure'``) in one statement per question, so
only digests leave the database: for the buckets of a key range (a count and one digest per
bucket), for the calls of a small range (one digest per call), or for named calls (every
aspect). Runtime calls are never looked at: a call recorded by both systems during the
dual-write period is two calls by design (docs/migration.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from worker.consistency.canonical import EMPTY_MD5, CallDigest, micros


def _us(column: str, name: str) -> sql.Composable:
    return sql.SQL("(extract(epoch FROM {}) * 1000000)::bigint").format(
        sql.Identifier(column, name)
    )


def _digests(scope: sql.Composable) -> sql.Composed:
    """``calls_digest``: one row per migrated call in ``scope`` (a condition on ``c``)."""
    return sql.SQL(
        """
WITH c AS MATERIALIZED (
    SELECT c.call_id, c.twilio_call_sid AS sid,
           (c.metadata ? 'legacy_origin' OR r.key IS NOT NULL) AS headless,
           coalesce(cu.external_id, c.legacy_customer_id) AS customer,
           c.started_at, c.ended_at, c.duration_seconds, c.call_type, c.direction, c.status,
           c.conversation_id, c.outcome, c.agent_name, c.metadata
      FROM calls c
      LEFT JOIN customers cu ON cu.id = c.customer_id
      LEFT JOIN migration_rejects r
             ON r.source = 'CallHistory' AND r.resolved_at IS NULL
            AND r.key = c.legacy_customer_id || '/' || c.twilio_call_sid
     WHERE c.source = 'azure' AND {scope}
),
rejected AS MATERIALIZED (
    SELECT split_part(key, '/', 1) AS sid, split_part(key, '/', 2)::int AS sequence
      FROM migration_rejects
     WHERE source = 'CallTranscripts' AND resolved_at IS NULL
       AND key ~ '^CA[0-9a-f]{{32}}/[0-9]{{1,9}}$'
),
e AS (
    SELECT c.sid, m.call_id, m.sequence, 'transcript'::text AS kind,
           json_build_array(m.sequence, 'transcript'::text, {m_ts}, m.role, m.content)::text
               AS line
      FROM call_messages m JOIN c ON c.call_id = m.call_id
    UNION ALL
    SELECT c.sid, t.call_id, t.sequence, 'tool'::text,
           json_build_array(t.sequence, 'tool'::text, {t_ts}, t.tool_name, t.request,
                            t.response, t.request_text, t.response_text, t.success,
                            t.duration_ms)::text
      FROM call_tool_executions t JOIN c ON c.call_id = t.call_id
    UNION ALL
    SELECT c.sid, v.call_id, v.sequence, 'event'::text,
           json_build_array(v.sequence, 'event'::text, {v_ts}, v.event_type, v.event_data,
                            v.event_data_text)::text
      FROM call_events v JOIN c ON c.call_id = v.call_id
),
entries AS (
    SELECT call_id,
           count(*) FILTER (WHERE kind = 'transcript') AS transcripts,
           count(*) FILTER (WHERE kind = 'tool') AS tools,
           count(*) FILTER (WHERE kind = 'event') AS events,
           md5(string_agg(line, E'\\n' ORDER BY sequence, kind COLLATE "C")) AS entries_md5
      FROM e
     WHERE NOT EXISTS (SELECT 1 FROM rejected x WHERE x.sid = e.sid AND x.sequence = e.sequence)
     GROUP BY call_id
),
calls_digest AS (
    SELECT c.sid, c.headless, c.customer, c.started_at,
           coalesce(x.transcripts, 0) AS transcripts, coalesce(x.tools, 0) AS tools,
           coalesce(x.events, 0) AS events,
           md5(CASE WHEN c.headless THEN 'null' ELSE json_build_array(
                   c.customer, {c_started}, {c_ended}, c.duration_seconds, c.call_type,
                   c.direction, c.status, c.conversation_id, c.outcome, c.agent_name,
                   c.metadata)::text END) AS header_md5,
           coalesce(x.entries_md5, {empty}) AS entries_md5
      FROM c LEFT JOIN entries x ON x.call_id = c.call_id
     WHERE NOT (c.headless AND x.call_id IS NULL)
)
"""
    ).format(
        scope=scope,
        m_ts=_us("m", "timestamp"),
        t_ts=_us("t", "timestamp"),
        v_ts=_us("v", "timestamp"),
        c_started=_us("c", "started_at"),
        c_ended=_us("c", "ended_at"),
        empty=sql.Literal(EMPTY_MD5),
    )


_IN_RANGE = sql.SQL("c.twilio_call_sid >= %(lo)s AND c.twilio_call_sid < %(hi)s")
_NAMED = sql.SQL("c.twilio_call_sid = ANY(%(sids)s)")

BUCKETS = _digests(_IN_RANGE) + sql.SQL(
    """
SELECT width_bucket(sid COLLATE "C", %(bounds)s::text[]) AS bucket, count(*),
       md5(string_agg(sid || md5(header_md5 || entries_md5), '' ORDER BY sid COLLATE "C"))
  FROM calls_digest GROUP BY 1
"""
)
CALLS = _digests(_IN_RANGE) + sql.SQL(
    "SELECT sid, md5(header_md5 || entries_md5) FROM calls_digest"
)
DETAILS = _digests(_NAMED) + sql.SQL(
    "SELECT sid, headless, customer, started_at, transcripts, tools, events, header_md5,"
    " entries_md5 FROM calls_digest"
)


def bucket_digests(
    conn: psycopg.Connection[Any], lo: str, hi: str, bounds: Sequence[str]
) -> dict[int, tuple[int, str]]:
    """``bucket -> (calls, digest)`` for the calls in ``[lo, hi)``, bucketed by ``bounds``
    (bucket ``i`` holds ``bounds[i-1] <= sid < bounds[i]``); empty buckets are absent."""
    rows = conn.execute(BUCKETS, {"lo": lo, "hi": hi, "bounds": list(bounds)}).fetchall()
    return {int(b): (int(n), str(d)) for b, n, d in rows}


def call_digests(conn: psycopg.Connection[Any], lo: str, hi: str) -> dict[str, str]:
    """``sid -> digest`` of every call in ``[lo, hi)``."""
    return dict(conn.execute(CALLS, {"lo": lo, "hi": hi}).fetchall())


def call_details(conn: psycopg.Connection[Any], sids: Sequence[str]) -> dict[str, CallDigest]:
    """Every aspect of the named calls (those that are stored)."""
    found = {}
    for row in conn.execute(DETAILS, {"sids": list(sids)}).fetchall():
        sid, headless, customer, started_at, transcripts, tools, events, header, entries = row
        found[sid] = CallDigest(
            sid=sid,
            headless=headless,
            customer=None if headless else customer,
            started_us=None if headless else micros(started_at),
            transcripts=transcripts,
            tools=tools,
            events=events,
            header_md5=header,
            entries_md5=entries,
        )
    return found
