# SQLModel types a table's attributes as their Python values (``Call.started_at: datetime``), so
# seed 001's SQLAlchemy idioms (``Call.started_at.desc()``, ``selectinload(Call.messages)``) do
# not type-check; this module keeps the seed's code unchanged and lets mypy skip exactly that.
# mypy: disable-error-code="arg-type, attr-defined, call-overload"
"""Seed 001's "Querying Call Data", "Performance Optimization" and "Troubleshooting" examples,
run against calls recorded through ``CallRecorder`` and finalized in process.

Each example is the seed's code with only two edits: the async session became a sync one
(``async with get_postgres_client().session() as session`` -> ``with Session(engine) as
session``, ``await session.execute`` -> ``session.execute``) and ``from app.models.database
import X`` became ``from models import X``. Its free variables (``tenant_id``, ``call_id``,
``since``) are the function's arguments, and its result is returned (or printed, as the seed
prints it) so the test can check the answer. SQL examples run as written, with the seed's
``'...'`` placeholders bound to a real value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, Integer, event, func, select, text
from sqlalchemy.orm import Session, selectinload

from models import (
    Call,
    CallAnalysis,
    CallMetric,
    CallRAGChunk,
    CallRAGRetrieval,
    CallTranscript,
    CallTransition,
    MetricType,
)
from tests.catalog import scalar
from worker.calls.finalize import FinalizeOutcome, finalize_call
from worker.client import CallRecorder
from worker.settings import Settings

TENANT = UUID("00000000-0000-4000-8000-00000000000a")
OTHER_TENANT = UUID("00000000-0000-4000-8000-00000000000b")
AGENT_1 = UUID("00000000-0000-4000-8000-000000000001")
AGENT_2 = UUID("00000000-0000-4000-8000-000000000002")


class StepClock:
    """A recorder's clock: one second per reading, from ``start``."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@dataclass(frozen=True)
class Recorded:
    """The calls of the scenario, by name, and when the recent ones started."""

    ids: dict[str, UUID]
    recent_start: datetime

    def names(self, ids: Any) -> set[str]:
        by_id = {value: name for name, value in self.ids.items()}
        return {by_id[i] for i in ids}


def _say(recorder: CallRecorder, *lines: tuple[str, str, int]) -> None:
    for role, content, turn in lines:
        recorder.record_message(role, content, turn_number=turn)


def _record_alice(clock: StepClock) -> CallRecorder:
    """The full call: every kind of row seed 001 records."""
    rec = CallRecorder(uuid4(), TENANT, AGENT_1, agent_name="Alex", clock=clock, announce=False)
    rec.initial_node = "greeting"
    _say(
        rec,
        ("user", "Hi, I have a question about my diabetes medication.", 1),
        ("assistant", "Of course. Which medication do you take?", 1),
    )
    rec.record_transition(
        from_node_id="greeting",
        to_node_id="medication",
        reason="workflow_transition",
        condition="always",
        turn_number=1,
        from_node_name="Greeting",
        to_node_name="Medication Info",
    )
    rec.record_metric(MetricType.LLM_TTFB, 0.2, processor="OpenAILLMService", turn_number=1)
    rec.record_metric(MetricType.USER_TO_BOT_LATENCY, 0.9, turn_number=1)
    rec.record_rag_retrieval(
        query="What is metformin?",
        query_params={"search_mode": "hybrid", "top_k": 2, "rrf_k": 60},
        chunks=[
            {
                "chunk_id": 123,
                "content": "Metformin lowers blood sugar. " * 5,
                "document_id": 45,
                "filename": "medical_guide.pdf",
                "s3_key": "docs/medical_guide.pdf",
                "chunk_index": 12,
                "token_count": 150,
                "score": 0.945,
            },
            {
                "chunk_id": 124,
                "content": "Take it with meals.",
                "document_id": 45,
                "filename": "medical_guide.pdf",
                "chunk_index": 13,
                "score": 0.81,
            },
        ],
        processing_time_ms=245.3,
        node_id="medication",
        turn_number=1,
    )
    rec.record_variable_extraction(
        variables_requested=["first_name", "topic"],
        variables_extracted={"first_name": "Alice", "topic": "diabetes"},
        success=True,
        processing_time_ms=680.5,
        node_id="medication",
        turn_number=1,
    )
    _say(rec, ("user", "Does my insurance cover a refill?", 2))
    rec.record_user_interruption(interrupted_at_turn=2, node_id="medication")
    rec.record_metric(MetricType.LLM_TTFB, 0.4, processor="OpenAILLMService", turn_number=2)
    _say(rec, ("assistant", "Yes, your plan covers the refill.", 2))
    rec.record_transition(from_node_id="medication", to_node_id="goodbye", reason="done")
    rec.final_node = "goodbye"
    rec.set_analysis(
        sentiment="positive",
        sentiment_score=0.8,
        call_successful=True,
        summary="Refill covered.",
        topics=["medication"],
        keywords_detected=["diabetes", "insurance", "refill"],
    )
    return rec


def _record_simple(
    clock: StepClock,
    *,
    tenant: UUID,
    agent: UUID,
    direction: str,
    words: str,
    keywords: list[str] | None,
    successful: bool | None = None,
) -> CallRecorder:
    rec = CallRecorder(uuid4(), tenant, agent, direction=direction, clock=clock, announce=False)
    _say(rec, ("user", words, 1), ("assistant", "Thank you for calling.", 1))
    rec.record_metric(MetricType.LLM_TTFB, 0.3, turn_number=1)
    if keywords is not None:
        rec.set_analysis(call_successful=successful, keywords_detected=keywords)
    return rec


@pytest.fixture
def recorded(settings: Settings, engine: Engine) -> Recorded:
    """Five calls: four recent ones (alice, bob, carol for the tenant; dave for another) and
    one the tenant had 40 days ago (erin)."""
    recent_start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    clock = StepClock(recent_start)
    old_clock = StepClock(recent_start - timedelta(days=38))
    recorders = {
        "alice": _record_alice(clock),
        "bob": _record_simple(
            clock, tenant=TENANT, agent=AGENT_1, direction="outbound",
            words="Calling about your insurance renewal.", keywords=["insurance"], successful=False,
        ),
        "carol": _record_simple(
            clock, tenant=TENANT, agent=AGENT_2, direction="inbound",
            words="I want to check my bill.", keywords=None,
        ),
        "dave": _record_simple(
            clock, tenant=OTHER_TENANT, agent=AGENT_2, direction="outbound",
            words="A reminder about your diabetes medication.",
            keywords=["diabetes", "insurance"], successful=True,
        ),
        "erin": _record_simple(
            old_clock, tenant=TENANT, agent=AGENT_1, direction="inbound",
            words="Another diabetes medication question.",
            keywords=["diabetes", "insurance"], successful=False,
        ),
    }  # fmt: skip
    for rec in recorders.values():
        rec.update_status("ended")
        result = finalize_call(rec.build_payload(), settings=settings, task_id="t", engine=engine)
        assert result.outcome == FinalizeOutcome.PERSISTED, result.error
    return Recorded({name: rec.call_id for name, rec in recorders.items()}, recent_start)


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement the engine sends while the test runs."""
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    yield sent
    event.remove(engine, "before_cursor_execute", count)


# -- Basic Queries ---------------------------------------------------------------------------


# fmt: off
def get_all_calls_for_tenant(engine: Engine, tenant_id: UUID) -> Any:
    with Session(engine) as session:
        result = session.execute(
            select(Call)
            .where(Call.tenant_id == tenant_id)
            .order_by(Call.started_at.desc())
            .limit(100)
        )
        calls = result.scalars().all()
    return calls  # noqa: RET504
# fmt: on


# fmt: off
def get_outbound_calls_only(engine: Engine, tenant_id: UUID) -> Any:
    with Session(engine) as session:
        result = session.execute(
            select(Call)
            .where(
                Call.tenant_id == tenant_id,
                Call.direction == "outbound",
            )
            .order_by(Call.started_at.desc())
            .limit(100)
        )
        outbound_calls = result.scalars().all()
    return outbound_calls  # noqa: RET504
# fmt: on


# fmt: off
def get_call_with_all_related_data(engine: Engine, call_id: UUID) -> Any:
    with Session(engine) as session:
        result = session.execute(
            select(Call)
            .where(Call.call_id == call_id)
            .options(
                selectinload(Call.transcript),
                selectinload(Call.messages),
                selectinload(Call.transitions),
                selectinload(Call.metrics),
                selectinload(Call.rag_retrievals).selectinload(CallRAGRetrieval.chunks),
                selectinload(Call.extracted_variables),
                selectinload(Call.analysis),
                selectinload(Call.interruptions),
            )
        )
        call = result.scalar_one_or_none()

        if call:
            print(f"Messages: {len(call.messages)}")  # noqa: T201
            print(f"Transitions: {len(call.transitions)}")  # noqa: T201
            print(f"RAG queries: {len(call.rag_retrievals)}")  # noqa: T201
    return call
# fmt: on


# fmt: off
def get_full_transcript(engine: Engine, call_id: UUID) -> Any:
    with Session(engine) as session:
        result = session.execute(select(CallTranscript).where(CallTranscript.call_id == call_id))
        transcript = result.scalar_one_or_none()

        if transcript:
            print(transcript.transcript_text)  # Plain text  # noqa: T201
            print(transcript.transcript_data)  # JSONB with structure  # noqa: T201
    return transcript
# fmt: on


def test_get_all_calls_for_tenant(engine: Engine, recorded: Recorded) -> None:
    calls = get_all_calls_for_tenant(engine, TENANT)
    assert [c.call_id for c in calls] == [
        recorded.ids[n] for n in ("carol", "bob", "alice", "erin")
    ]


def test_get_outbound_calls_only(engine: Engine, recorded: Recorded) -> None:
    outbound_calls = get_outbound_calls_only(engine, TENANT)
    assert [c.call_id for c in outbound_calls] == [recorded.ids["bob"]]


def test_get_call_with_all_related_data(
    engine: Engine, recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    call = get_call_with_all_related_data(engine, recorded.ids["alice"])
    assert capsys.readouterr().out == "Messages: 4\nTransitions: 2\nRAG queries: 1\n"
    # Loaded in the session, read after it closed: everything came with the query.
    assert [m.sequence for m in call.messages] == [1, 2, 3, 4]
    assert [t.to_node_id for t in call.transitions] == ["medication", "goodbye"]
    assert sorted(m.metric_type for m in call.metrics) == [
        "llm_ttfb",
        "llm_ttfb",
        "user_to_bot_latency",
    ]
    (retrieval,) = call.rag_retrievals
    assert [c.chunk_rank for c in retrieval.chunks] == [1, 2]
    assert [v.variables_extracted for v in call.extracted_variables] == [
        {"first_name": "Alice", "topic": "diabetes"}
    ]
    assert [i.interrupted_at_turn for i in call.interruptions] == [2]
    # One-to-one: a row, not a list.
    assert isinstance(call.transcript, CallTranscript)
    assert call.transcript.message_count == 4
    assert isinstance(call.analysis, CallAnalysis)
    assert call.analysis.keywords_detected == ["diabetes", "insurance", "refill"]
    assert call.analysis.id == call.call_id


def test_a_call_without_analysis_has_none(engine: Engine, recorded: Recorded) -> None:
    call = get_call_with_all_related_data(engine, recorded.ids["carol"])
    assert call.analysis is None
    assert call.transcript is not None
    assert call.rag_retrievals == []


def test_get_full_transcript(
    engine: Engine, recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    transcript = get_full_transcript(engine, recorded.ids["alice"])
    text_lines = transcript.transcript_text.splitlines()
    assert text_lines == [
        "user: Hi, I have a question about my diabetes medication.",
        "assistant: Of course. Which medication do you take?",
        "user: Does my insurance cover a refill?",
        "assistant: Yes, your plan covers the refill.",
    ]
    assert [m["role"] for m in transcript.transcript_data] == [
        "user", "assistant", "user", "assistant",
    ]  # fmt: skip
    assert capsys.readouterr().out.startswith(transcript.transcript_text + "\n[{")


# -- Advanced Queries ------------------------------------------------------------------------


# fmt: off
def search_transcripts(engine: Engine) -> Any:
    with Session(engine) as session:
        result = session.execute(
            select(CallTranscript)
            .where(
                func.to_tsvector('english', CallTranscript.transcript_text)
                .op('@@')(func.plainto_tsquery('english', 'diabetes medication'))
            )
            .limit(50)
        )
        matching_transcripts = result.scalars().all()
    return matching_transcripts  # noqa: RET504
# fmt: on


# fmt: off
def get_performance_metrics_for_call(engine: Engine, call_id: UUID) -> tuple[Any, Any]:
    with Session(engine) as session:
        # Get average TTFB
        result = session.execute(
            select(func.avg(CallMetric.value))
            .where(
                CallMetric.call_id == call_id,
                CallMetric.metric_type == MetricType.LLM_TTFB,
            )
        )
        avg_ttfb = result.scalar()

        # Get all metrics grouped by type
        result = session.execute(
            select(
                CallMetric.metric_type,
                func.avg(CallMetric.value).label('avg'),
                func.min(CallMetric.value).label('min'),
                func.max(CallMetric.value).label('max'),
                func.count(CallMetric.id).label('count'),
            )
            .where(CallMetric.call_id == call_id)
            .group_by(CallMetric.metric_type)
        )
        metrics_summary = result.all()
    return avg_ttfb, metrics_summary
# fmt: on


# fmt: off
def get_conversation_flow(engine: Engine, call_id: UUID) -> None:
    with Session(engine) as session:
        result = session.execute(
            select(CallTransition)
            .where(CallTransition.call_id == call_id)
            .order_by(CallTransition.sequence)
        )
        transitions = result.scalars().all()

        # Build flow diagram
        for t in transitions:
            print(f"{t.sequence}. {t.from_node_name or t.from_node_id} → "  # noqa: T201
                  f"{t.to_node_name or t.to_node_id} ({t.reason})")
# fmt: on


# fmt: off
def get_rag_retrievals_with_chunks(engine: Engine, call_id: UUID) -> None:
    with Session(engine) as session:
        result = session.execute(
            select(CallRAGRetrieval)
            .where(CallRAGRetrieval.call_id == call_id)
            .options(selectinload(CallRAGRetrieval.chunks))
            .order_by(CallRAGRetrieval.query_sequence)
        )
        retrievals = result.scalars().all()

        for retrieval in retrievals:
            print(f"\nQuery #{retrieval.query_sequence}: {retrieval.query_text}")  # noqa: T201
            print(f"Mode: {retrieval.search_mode}, Chunks: {retrieval.chunks_retrieved}")  # noqa: T201
            for chunk in retrieval.chunks:
                print(f"  [{chunk.chunk_rank}] Score: {chunk.score:.3f} - "  # noqa: T201
                      f"{chunk.filename} (chunk {chunk.chunk_index})")
                print(f"      {chunk.content[:100]}...")  # noqa: T201
# fmt: on


def test_search_transcripts_full_text(engine: Engine, recorded: Recorded) -> None:
    matching_transcripts = search_transcripts(engine)
    assert recorded.names(t.call_id for t in matching_transcripts) == {"alice", "dave", "erin"}


def test_get_performance_metrics_for_call(engine: Engine, recorded: Recorded) -> None:
    avg_ttfb, metrics_summary = get_performance_metrics_for_call(engine, recorded.ids["alice"])
    assert avg_ttfb == Decimal("0.3")
    summary = {row.metric_type: (row.avg, row.min, row.max, row.count) for row in metrics_summary}
    assert summary == {
        "llm_ttfb": (Decimal("0.3"), Decimal("0.2"), Decimal("0.4"), 2),
        "user_to_bot_latency": (Decimal("0.9"), Decimal("0.9"), Decimal("0.9"), 1),
    }


def test_get_conversation_flow(
    engine: Engine, recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    get_conversation_flow(engine, recorded.ids["alice"])
    assert capsys.readouterr().out == (
        "1. Greeting → Medication Info (workflow_transition)\n2. medication → goodbye (done)\n"
    )


def test_get_rag_retrievals_with_chunks(
    engine: Engine, recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    get_rag_retrievals_with_chunks(engine, recorded.ids["alice"])
    assert capsys.readouterr().out == (
        "\nQuery #1: What is metformin?\n"
        "Mode: hybrid, Chunks: 2\n"
        "  [1] Score: 0.945 - medical_guide.pdf (chunk 12)\n"
        f"      {('Metformin lowers blood sugar. ' * 5)[:100]}...\n"
        "  [2] Score: 0.810 - medical_guide.pdf (chunk 13)\n"
        "      Take it with meals....\n"
    )


# -- Analytics Queries -----------------------------------------------------------------------


# fmt: off
def agent_performance_dashboard(engine: Engine) -> Any:
    with Session(engine) as session:
        # Last 30 days
        since = datetime.utcnow() - timedelta(days=30)

        result = session.execute(
            select(
                Call.agent_id,
                func.count(Call.call_id).label('total_calls'),
                func.avg(Call.duration_seconds).label('avg_duration'),
                func.avg(Call.total_turns).label('avg_turns'),
                func.avg(Call.avg_llm_ttfb_ms).label('avg_ttfb'),
                func.sum(Call.total_llm_tokens).label('total_tokens'),
            )
            .where(Call.started_at >= since)
            .group_by(Call.agent_id)
        )
        stats = result.all()
    return stats  # noqa: RET504
# fmt: on


# fmt: off
def search_calls_by_keywords(engine: Engine) -> Any:
    with Session(engine) as session:
        result = session.execute(
            select(Call)
            .join(CallAnalysis)
            .where(CallAnalysis.keywords_detected.contains(['diabetes', 'insurance']))
            .options(selectinload(Call.analysis))
        )
        matching_calls = result.scalars().all()
    return matching_calls  # noqa: RET504
# fmt: on


# fmt: off
def successful_calls_rate(engine: Engine, since: datetime) -> tuple[Any, float]:
    with Session(engine) as session:
        result = session.execute(
            select(
                func.count(CallAnalysis.id).label('total'),
                func.sum(
                    func.cast(CallAnalysis.call_successful, Integer)
                ).label('successful'),
            )
            .where(CallAnalysis.call_id.in_(
                select(Call.call_id).where(Call.started_at >= since)
            ))
        )
        stats = result.one()
        success_rate = (stats.successful / stats.total) * 100 if stats.total > 0 else 0
    return stats, success_rate
# fmt: on


def test_agent_performance_dashboard(engine: Engine, recorded: Recorded) -> None:
    stats = {row.agent_id: row for row in agent_performance_dashboard(engine)}
    # erin (40 days ago) is outside the 30 days; alice and bob for agent 1, carol and dave for 2.
    assert {agent: row.total_calls for agent, row in stats.items()} == {AGENT_1: 2, AGENT_2: 2}
    assert stats[AGENT_1].avg_ttfb == Decimal("300")  # alice 300 ms on average, bob 300 ms
    assert stats[AGENT_1].avg_turns == Decimal(3) / 2  # alice 2 turns, bob 1
    assert stats[AGENT_1].total_tokens == 0


def test_search_calls_by_keywords(engine: Engine, recorded: Recorded) -> None:
    matching_calls = search_calls_by_keywords(engine)
    assert recorded.names(c.call_id for c in matching_calls) == {"alice", "dave", "erin"}
    assert all(
        {"diabetes", "insurance"} <= set(c.analysis.keywords_detected) for c in matching_calls
    )


def test_keywords_overlap(engine: Engine, recorded: Recorded) -> None:
    with Session(engine) as session:
        found = session.scalars(
            select(CallAnalysis.call_id).where(CallAnalysis.keywords_detected.overlap(["refill"]))
        ).all()
    assert recorded.names(found) == {"alice"}


def test_successful_calls_rate(engine: Engine, recorded: Recorded) -> None:
    since = recorded.recent_start - timedelta(days=1)
    stats, success_rate = successful_calls_rate(engine, since)
    # Analyses of calls since then: alice (yes), bob (no), dave (yes); carol has none.
    assert (stats.total, stats.successful) == (3, 2)
    assert success_rate == pytest.approx(200 / 3)


# -- Performance Optimization ----------------------------------------------------------------


# fmt: off
def use_selectinload_for_relationships(engine: Engine) -> Any:
    # Prevents N+1 queries
    with Session(engine) as session:
        result = session.execute(
            select(Call)
            .options(
                selectinload(Call.messages),
                selectinload(Call.transitions),
            )
            .limit(100)
        )
        calls = result.scalars().all()
    return calls  # noqa: RET504
# fmt: on


def test_selectinload_prevents_n_plus_one_queries(
    engine: Engine, recorded: Recorded, statements: list[str]
) -> None:
    calls = use_selectinload_for_relationships(engine)
    assert len(calls) == 5
    assert len(statements) == 3  # the calls, then each relationship for all of them at once
    assert sum(len(c.messages) for c in calls) == 4 + 2 * 4


def test_every_relationship_loads_for_many_calls_in_one_query_each(
    engine: Engine, recorded: Recorded, statements: list[str]
) -> None:
    relationships = [
        Call.transcript, Call.messages, Call.transitions, Call.metrics, Call.rag_retrievals,
        Call.extracted_variables, Call.analysis, Call.interruptions, Call.tool_executions,
        Call.events,
    ]  # fmt: skip
    with Session(engine) as session:
        options = [selectinload(r) for r in relationships]
        options.append(selectinload(Call.rag_retrievals).selectinload(CallRAGRetrieval.chunks))
        calls = session.scalars(select(Call).options(*options)).all()
    assert len(calls) == 5
    assert len(statements) == 1 + len(relationships) + 1
    chunks = [c for call in calls for r in call.rag_retrievals for c in r.chunks]
    assert all(isinstance(c, CallRAGChunk) for c in chunks) and len(chunks) == 2


def test_always_filter_by_timestamp_on_partitioned_tables(
    conn: psycopg.Connection[Any], recorded: Recorded
) -> None:
    month = recorded.recent_start.replace(day=1, hour=0, minute=0, second=0)
    following = (month + timedelta(days=32)).replace(day=1)
    params = {"call_id": recorded.ids["alice"], "lo": month, "hi": following}
    good = """
        SELECT * FROM call_messages
        WHERE call_id = %(call_id)s
          AND timestamp >= %(lo)s
          AND timestamp < %(hi)s;
    """
    assert len(conn.execute(good, params).fetchall()) == 4
    plan = "\n".join(
        row[0] for row in conn.execute(sql.SQL("EXPLAIN {}").format(sql.SQL(good)), params)
    )
    # Should see only that month's partition (seed 001: "Partitions selected: ...").
    assert set(re.findall(r"call_messages_\d{4}_\d{2}", plan)) == {f"call_messages_{month:%Y_%m}"}


def test_use_summary_metrics_from_calls_table(
    conn: psycopg.Connection[Any], recorded: Recorded
) -> None:
    good = conn.execute(
        """
        SELECT avg_llm_ttfb_ms, total_llm_tokens
        FROM calls
        WHERE started_at >= '2025-01-01';
        """
    ).fetchall()
    assert len(good) == 5
    bad = scalar(
        conn,
        """
        SELECT AVG(value) FROM call_metrics
        WHERE metric_type = 'llm_ttfb'
          AND call_id IN (SELECT call_id FROM calls WHERE tenant_id = %s);
        """,
        TENANT,
    )
    # alice 0.2 and 0.4, bob, carol and erin 0.3 each: the same answer the summaries give.
    assert bad == Decimal("0.3")


def test_limit_result_sets(conn: psycopg.Connection[Any], recorded: Recorded) -> None:
    rows = conn.execute(
        """
        SELECT * FROM call_messages
        WHERE call_id = %s
        ORDER BY sequence
        LIMIT 1000;
        """,
        (recorded.ids["alice"],),
    ).fetchall()
    assert len(rows) == 4


def test_index_maintenance_and_monitoring_queries(
    conn: psycopg.Connection[Any], recorded: Recorded
) -> None:
    for statement in (
        "REINDEX TABLE call_messages;",
        "REINDEX TABLE call_metrics;",
        "ANALYZE call_messages;",
        "ANALYZE call_transitions;",
    ):
        conn.execute(statement)
    usage = conn.execute(
        """
        SELECT
            schemaname,
            relname AS tablename,
            indexrelname AS indexname,
            idx_scan,
            idx_tup_read,
            idx_tup_fetch
        FROM pg_stat_user_indexes
        WHERE schemaname = 'public'
        ORDER BY idx_scan DESC;
        """
    ).fetchall()
    assert "ix_call_transcripts_transcript_text_fts" in {row[2] for row in usage}
    active = conn.execute(
        """
        SELECT
            pid,
            now() - query_start AS duration,
            state,
            query
        FROM pg_stat_activity
        WHERE state != 'idle'
          AND query NOT LIKE '%%pg_stat_activity%%'
        ORDER BY duration DESC;
        """
    ).fetchall()
    assert all("pg_stat_activity" not in row[3] for row in active)
    sizes = conn.execute(
        """
        SELECT
            schemaname,
            tablename,
            pg_size_pretty(pg_total_relation_size(schemaname||'.'||tablename)) AS size,
            pg_total_relation_size(schemaname||'.'||tablename) AS bytes
        FROM pg_tables
        WHERE schemaname = 'public'
        ORDER BY bytes DESC;
        """
    ).fetchall()
    assert {"calls", "call_transcripts", "call_analysis"} <= {row[1] for row in sizes}


# -- Troubleshooting -------------------------------------------------------------------------


def test_database_connection(engine: Engine) -> None:
    with Session(engine) as session:
        result = session.execute(text("SELECT 1"))
        assert result.scalar() == 1  # Should print: 1


# fmt: off
def check_call_exists(engine: Engine, call_id: UUID) -> bool:
    with Session(engine) as session:
        result = session.execute(
            select(Call).where(Call.call_id == call_id)
        )
        call = result.scalar_one_or_none()
        if not call:
            print("❌ Call record missing!")  # noqa: T201
    return call is not None
# fmt: on


def test_check_call_exists(
    engine: Engine, recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_call_exists(engine, recorded.ids["alice"])
    assert not check_call_exists(engine, uuid4())
    assert capsys.readouterr().out == "❌ Call record missing!\n"


def test_slow_query_checks(conn: psycopg.Connection[Any], recorded: Recorded) -> None:
    conn.execute("SET enable_seqscan = off")  # a handful of rows: make the planner show its index
    plan = "\n".join(
        row[0]
        for row in conn.execute(
            "EXPLAIN ANALYZE SELECT * FROM call_messages WHERE call_id = %s",
            (recorded.ids["alice"],),
        )
    )
    # Each partition's copy of ix_call_messages_call_id_sequence (seed 001: idx_messages_call_sequence).
    assert "call_id_sequence_idx" in plan
    assert "Seq Scan" not in plan
    for statement in (
        "ANALYZE call_messages;",
        "ANALYZE call_metrics;",
        "ANALYZE call_transitions;",
        "ANALYZE call_rag_retrievals;",
    ):
        conn.execute(statement)
