"""Persisting calls on a real PostgreSQL: every field, revisions, partitions, one transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.rows import dict_row
from sqlalchemy import Engine

from models.enums import MetricType
from models.payload import TIME_METRICS, CallPayload
from tests import factories
from worker.calls.finalize import FinalizeOutcome, finalize_call
from worker.calls.summary import RECOMPUTE_SQL, SUMMARY_COLUMNS, stored_values
from worker.maintenance.partition_cache import partition_guard
from worker.maintenance.partitions import add_months, existing_months, month_start
from worker.settings import Settings


def _rows(
    conn: psycopg.Connection[Any], query: str | sql.Composed, *params: Any
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(query, params).fetchall()


def test_a_rich_call_round_trips_field_by_field(
    settings: Settings, engine: Engine, conn: psycopg.Connection[Any]
) -> None:
    body = factories.payload(seed=11)
    result = finalize_call(body, settings=settings, task_id="t-1", engine=engine)
    assert result.outcome is FinalizeOutcome.PERSISTED
    p = CallPayload.model_validate(body)
    cid = p.call_id

    (call,) = _rows(conn, "SELECT * FROM calls WHERE call_id = %s", cid)
    for field in (
        "tenant_id", "agent_id", "agent_version", "agent_name", "from_number", "to_number",
        "twilio_call_sid", "twilio_stream_sid", "recording_enabled", "error_message",
        "started_at", "ended_at", "finalized_at", "initial_node", "final_node", "revision",
    ):  # fmt: skip
        assert call[field] == getattr(p, field), field
    assert call["direction"] == p.direction.value and call["status"] == p.status.value
    assert call["source"] == "runtime" and call["persisted_at"] is not None

    messages = _rows(conn, "SELECT * FROM call_messages WHERE call_id = %s ORDER BY sequence", cid)
    assert len(messages) == len(p.messages)
    for row, m in zip(messages, p.messages, strict=True):
        assert (row["sequence"], row["timestamp"], row["role"], row["content"]) == (
            m.sequence, m.timestamp, m.role.value, m.content,
        )  # fmt: skip
        assert (row["node_id"], row["turn_number"], row["was_interrupted"]) == (
            m.node_id, m.turn_number, m.was_interrupted,
        )  # fmt: skip

    metrics = _rows(conn, "SELECT * FROM call_metrics WHERE call_id = %s ORDER BY id", cid)
    assert [(r["metric_type"], r["value"], r["timestamp"]) for r in metrics] == [
        (m.metric_type.value, value, m.timestamp)
        for m, value in zip(p.metrics, stored_values(p), strict=True)
    ]
    assert {r["metric_type"] for r in metrics} == {t.value for t in MetricType}

    transitions = _rows(
        conn, "SELECT * FROM call_transitions WHERE call_id = %s ORDER BY sequence", cid
    )
    assert [
        (r["from_node_id"], r["to_node_id"], r["reason"], r["to_node_name"]) for r in transitions
    ] == [(t.from_node_id, t.to_node_id, t.reason, t.to_node_name) for t in p.transitions]

    retrievals = _rows(
        conn, "SELECT * FROM call_rag_retrievals WHERE call_id = %s ORDER BY query_sequence", cid
    )
    chunks = _rows(
        conn,
        "SELECT * FROM call_rag_chunks WHERE call_id = %s ORDER BY retrieval_timestamp, chunk_rank",
        cid,
    )
    assert len(retrievals) == len(p.rag_retrievals) and len(chunks) == sum(
        len(r.chunks) for r in p.rag_retrievals
    )
    by_retrieval = {r["id"]: r for r in retrievals}
    for r, expected in zip(retrievals, p.rag_retrievals, strict=True):
        assert (r["query_text"], r["search_mode"], r["top_k"], r["chunks_retrieved"]) == (
            expected.query_text, expected.search_mode.value if expected.search_mode else None,
            expected.top_k, len(expected.chunks),
        )  # fmt: skip
        assert r["query_params"] == expected.query_params
        stored = [c for c in chunks if c["retrieval_id"] == r["id"]]
        assert [(c["chunk_id"], c["content"], c["score"], c["filename"]) for c in stored] == [
            (c.chunk_id, c.content, c.score, c.filename) for c in expected.chunks
        ]
    assert all(c["retrieval_id"] in by_retrieval for c in chunks)

    variables = _rows(
        conn, "SELECT * FROM call_extracted_variables WHERE call_id = %s ORDER BY sequence", cid
    )
    assert [
        (v["variables_requested"], v["variables_extracted"], v["success"]) for v in variables
    ] == [(v.variables_requested, v.variables_extracted, v.success) for v in p.variable_extractions]
    tools = _rows(
        conn, "SELECT * FROM call_tool_executions WHERE call_id = %s ORDER BY sequence", cid
    )
    assert [
        (t["tool_name"], t["request"], t["response"], t["success"], t["duration_ms"]) for t in tools
    ] == [(t.tool_name, t.request, t.response, t.success, t.duration_ms) for t in p.tool_executions]
    events = _rows(conn, "SELECT * FROM call_events WHERE call_id = %s ORDER BY sequence", cid)
    assert [(e["event_type"], e["event_data"]) for e in events] == [
        (e.event_type, e.event_data) for e in p.events
    ]
    interruptions = _rows(
        conn, "SELECT * FROM call_user_interruptions WHERE call_id = %s ORDER BY timestamp", cid
    )
    assert [i["interrupted_at_turn"] for i in interruptions] == [
        i.interrupted_at_turn for i in p.interruptions
    ]

    (analysis,) = _rows(conn, "SELECT * FROM call_analysis WHERE call_id = %s", cid)
    assert p.analysis is not None
    assert (analysis["sentiment"], analysis["sentiment_score"], analysis["topics"], analysis["keywords_detected"]) == (
        p.analysis.sentiment.value if p.analysis.sentiment else None, p.analysis.sentiment_score,
        p.analysis.topics, p.analysis.keywords_detected,
    )  # fmt: skip

    (transcript,) = _rows(conn, "SELECT * FROM call_transcripts WHERE call_id = %s", cid)
    assert transcript["message_count"] == len(p.messages)
    assert transcript["transcript_text"].splitlines()[0] == f"user: {p.messages[0].content}"
    assert [m["content"] for m in transcript["transcript_data"]] == [m.content for m in p.messages]
    found = _rows(
        conn,
        "SELECT call_id FROM call_transcripts"
        " WHERE to_tsvector('english', transcript_text) @@ plainto_tsquery('english', %s)",
        "payment plan",
    )
    assert {"call_id": cid} in found or "payment" not in transcript["transcript_text"].lower()

    (recomputed,) = _rows(conn, RECOMPUTE_SQL.replace("%(call_ids)s", "%s"), [cid])
    for column in SUMMARY_COLUMNS:
        assert call[column] == recomputed[column], column
    assert call["total_messages"] == len(p.messages) and call["total_llm_tokens"] > 0


def test_a_duplicate_delivery_leaves_one_copy(
    settings: Settings, engine: Engine, conn: psycopg.Connection[Any]
) -> None:
    body = factories.payload(seed=12)
    assert (
        finalize_call(body, settings=settings, task_id="a", engine=engine).outcome
        is FinalizeOutcome.PERSISTED
    )
    assert (
        finalize_call(body, settings=settings, task_id="b", engine=engine).outcome
        is FinalizeOutcome.UNCHANGED
    )
    (count,) = conn.execute(
        "SELECT count(*) FROM call_messages WHERE call_id = %s", (body["call_id"],)
    ).fetchone() or (0,)
    assert count == len(body["messages"])


def test_a_later_revision_replaces_and_an_older_one_changes_nothing(
    settings: Settings, engine: Engine, conn: psycopg.Connection[Any]
) -> None:
    rec = factories.recorder(13)
    rec.update_status("in_progress")
    first = rec.build_payload()
    rec.record_message("user", "one more thing")
    rec.update_status("ended")
    second = rec.build_payload()
    cid = second["call_id"]

    def state() -> tuple[int, int, str]:
        row = conn.execute(
            "SELECT revision, total_messages, status FROM calls WHERE call_id = %s", (cid,)
        ).fetchone()
        assert row is not None
        return row[0], row[1], row[2]

    assert second["revision"] > first["revision"]
    finalize_call(first, settings=settings, task_id="1", engine=engine)
    assert state() == (first["revision"], len(first["messages"]), "in_progress")
    finalize_call(second, settings=settings, task_id="2", engine=engine)
    assert state() == (second["revision"], len(second["messages"]), "ended")
    late = finalize_call(first, settings=settings, task_id="3", engine=engine)
    assert late.outcome is FinalizeOutcome.UNCHANGED and state() == (
        second["revision"],
        len(second["messages"]),
        "ended",
    )
    (messages,) = conn.execute(
        "SELECT count(*) FROM call_messages WHERE call_id = %s", (cid,)
    ).fetchone() or (0,)
    assert messages == len(second["messages"])


def test_a_call_across_a_month_boundary_into_missing_partitions_is_persisted(
    settings: Settings, engine: Engine, conn: psycopg.Connection[Any]
) -> None:
    partition_guard.forget()
    # Months half a year ago: within retention, before the ones the template made.
    june = add_months(month_start(datetime.now(UTC)), -6)
    may = add_months(june, -1)
    start = datetime(june.year, june.month, 1, tzinfo=UTC) - timedelta(minutes=5)
    body = factories.payload(seed=14, start=start)
    months = {m["timestamp"][:7] for m in body["messages"]}
    assert months == {may.isoformat()[:7], june.isoformat()[:7]}
    result = finalize_call(body, settings=settings, task_id="t", engine=engine)
    assert result.outcome is FinalizeOutcome.PERSISTED
    have = existing_months(conn)
    assert all({may, june} <= have[t] for t in have)
    (count,) = conn.execute(
        "SELECT count(*) FROM call_messages WHERE call_id = %s", (body["call_id"],)
    ).fetchone() or (0,)
    assert count == len(body["messages"])


def test_a_partition_dropped_behind_the_cache_is_made_again(
    settings: Settings, engine: Engine, conn: psycopg.Connection[Any]
) -> None:
    march = add_months(month_start(datetime.now(UTC)), -8)
    start = datetime(march.year, march.month, 10, tzinfo=UTC)
    body = factories.payload(seed=15, start=start)
    partition_guard.ensure(engine, {march})
    # The cache still believes the month exists.
    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(f"call_metrics_{march:%Y_%m}")))
    result = finalize_call(body, settings=settings, task_id="t", engine=engine)
    assert result.outcome is FinalizeOutcome.PERSISTED
    (count,) = conn.execute(
        "SELECT count(*) FROM call_metrics WHERE call_id = %s", (body["call_id"],)
    ).fetchone() or (0,)
    assert count == len(body["metrics"])


def test_a_constraint_violation_dead_letters_and_writes_nothing(
    settings: Settings, engine: Engine, conn: psycopg.Connection[Any]
) -> None:
    body = factories.payload(seed=16)
    conn.execute(
        "ALTER TABLE call_events ADD CONSTRAINT no_connected CHECK (event_type <> 'call_connected')"
    )
    result = finalize_call(body, settings=settings, task_id="t-9", engine=engine)
    assert result.outcome is FinalizeOutcome.DEAD_LETTERED
    assert conn.execute("SELECT count(*) FROM calls").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM call_messages").fetchone() == (0,)
    row = conn.execute(
        "SELECT error_class, error_message, task_id, call_id FROM failed_payloads"
    ).fetchone()
    assert row is not None and row[0] == "ConstraintViolation" and "no_connected" in row[1]
    assert row[2] == "t-9" and str(row[3]) == body["call_id"]


time_values = st.decimals(min_value=Decimal("-2"), max_value=Decimal("30"), places=4)
count_values = st.integers(min_value=0, max_value=5000)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(st.sampled_from(list(MetricType)), time_values, count_values), max_size=40),
    st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=6)), max_size=12),
)
def test_python_and_sql_summaries_agree(
    settings: Settings,
    engine: Engine,
    conn: psycopg.Connection[Any],
    metrics: list[Any],
    turns: list[int | None],
) -> None:
    body = factories.small_payload(17, call_id=str(uuid.uuid4()), twilio_call_sid=None)
    stamp = body["started_at"]
    body["metrics"] = [
        {"timestamp": stamp, "metric_type": t.value, "value": float(v) if t in TIME_METRICS else c}
        for t, v, c in metrics
    ]
    body["messages"] = [
        {
            "sequence": i + 1,
            "timestamp": stamp,
            "role": "user" if i % 2 == 0 else "assistant",
            "content": "x",
            "turn_number": t,
        }
        for i, t in enumerate(turns)
    ]
    finalize_call(body, settings=settings, task_id="p", engine=engine)
    columns = sql.SQL(", ").join(map(sql.Identifier, SUMMARY_COLUMNS))
    stored = _rows(
        conn, sql.SQL("SELECT {} FROM calls WHERE call_id = %s").format(columns), body["call_id"]
    )
    recomputed = _rows(
        conn, RECOMPUTE_SQL.replace("%(call_ids)s", "%s"), [uuid.UUID(body["call_id"])]
    )
    assert stored and recomputed
    for column in SUMMARY_COLUMNS:
        assert stored[0][column] == recomputed[0][column], column


@pytest.mark.parametrize("value", ["0.0005", "0.0015", "0.00049999"])
def test_rounding_ties_agree(
    settings: Settings, engine: Engine, conn: psycopg.Connection[Any], value: str
) -> None:
    body = factories.small_payload(18)
    body["metrics"] = [
        {"timestamp": body["started_at"], "metric_type": "llm_ttfb", "value": float(value)}
    ]
    finalize_call(body, settings=settings, task_id="r", engine=engine)
    stored = _rows(conn, "SELECT avg_llm_ttfb_ms FROM calls WHERE call_id = %s", body["call_id"])
    recomputed = _rows(
        conn, RECOMPUTE_SQL.replace("%(call_ids)s", "%s"), [uuid.UUID(body["call_id"])]
    )
    assert stored[0]["avg_llm_ttfb_ms"] == recomputed[0]["avg_llm_ttfb_ms"]
