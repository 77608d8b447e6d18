"""Seed 001's searches use an index: full-text search on transcripts, as seed 001 spells it and as
we do (``EXPLAIN`` on a few thousand rows, with the planner's default settings), and keyword
containment/overlap on ``call_analysis``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, func, select
from sqlalchemy.sql import Select
from sqlmodel import col

from models import CallAnalysis, CallTranscript

ROWS = 3000
FTS_INDEX = "ix_call_transcripts_transcript_text_fts"
KEYWORDS_INDEX = "ix_call_analysis_keywords_detected"


@pytest.fixture
def searchable(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """``ROWS`` calls with a transcript and an analysis each; one in a hundred talks about
    diabetes medication and has the keyword ``diabetes``."""
    conn.execute(
        """
        INSERT INTO calls (call_id, tenant_id, agent_id, status, started_at, revision)
        SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'ended',
               now() - n * interval '1 minute', 1
          FROM generate_series(1, %s) AS n
        """,
        (ROWS,),
    )
    conn.execute(
        """
        WITH numbered AS (SELECT call_id, row_number() OVER (ORDER BY call_id) AS n FROM calls)
        INSERT INTO call_transcripts (call_id, transcript_text, transcript_data, message_count)
        SELECT call_id,
               CASE WHEN n % 100 = 0 THEN 'user: about my diabetes medication'
                    ELSE 'user: question number ' || n || ' about my bill ' || md5(n::text) END,
               '[]'::jsonb, 1
          FROM numbered
        """
    )
    conn.execute(
        """
        WITH numbered AS (SELECT call_id, row_number() OVER (ORDER BY call_id) AS n FROM calls)
        INSERT INTO call_analysis (call_id, call_successful, keywords_detected)
        SELECT call_id, n % 2 = 0,
               CASE WHEN n % 100 = 0 THEN ARRAY['diabetes', 'insurance']
                    ELSE ARRAY['billing', 'k' || (n % 300)] END
          FROM numbered
        """
    )
    conn.execute("ANALYZE calls, call_transcripts, call_analysis")
    return conn


def _plan(conn: psycopg.Connection[Any], query: sql.Composable, params: Any = None) -> Any:
    row = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(query), params).fetchone()
    assert row is not None
    return row[0][0]["Plan"]


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _indexes_used(plan: dict[str, Any]) -> set[str]:
    return {node["Index Name"] for node in _nodes(plan) if "Index Name" in node}


def _scans(plan: dict[str, Any]) -> set[str]:
    return {node["Node Type"] for node in _nodes(plan)}


def _orm_plan(conn: psycopg.Connection[Any], engine: Engine, statement: Select[Any]) -> Any:
    """The plan of ``statement`` as the ORM sends it: SQL text and bound parameters."""
    compiled = statement.compile(dialect=engine.dialect)
    return _plan(conn, sql.SQL(compiled.string), compiled.params)


def test_transcripts_have_exactly_one_full_text_index(conn: psycopg.Connection[Any]) -> None:
    definitions = [
        row[0]
        for row in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'call_transcripts'"
            " AND indexdef LIKE '%%tsvector%%'"
        )
    ]
    assert definitions == [
        (
            "CREATE INDEX ix_call_transcripts_transcript_text_fts ON public.call_transcripts"
            " USING gin (to_tsvector('english'::regconfig, transcript_text))"
        )
    ]
    tsvector_columns = conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = 'call_transcripts' AND data_type = 'tsvector'"
    ).fetchall()
    assert tsvector_columns == []


def test_seed_001s_full_text_search_uses_the_index(
    searchable: psycopg.Connection[Any], engine: Engine
) -> None:
    statement = (
        select(CallTranscript)
        .where(
            func.to_tsvector("english", CallTranscript.transcript_text).op("@@")(
                func.plainto_tsquery("english", "diabetes medication")
            )
        )
        .limit(50)
    )
    plan = _orm_plan(searchable, engine, statement)
    assert _indexes_used(plan) == {FTS_INDEX}
    assert "Seq Scan" not in _scans(plan)


def test_the_seeds_sql_and_our_search_use_the_same_index(
    searchable: psycopg.Connection[Any],
) -> None:
    seed = sql.SQL(
        "SELECT call_id FROM call_transcripts"
        " WHERE to_tsvector('english', transcript_text) @@ plainto_tsquery('english', %s)"
    )
    ours = sql.SQL(
        "SELECT call_id FROM call_transcripts"
        " WHERE to_tsvector('english', transcript_text) @@ websearch_to_tsquery('english', %s)"
    )
    for query in (seed, ours):
        assert _indexes_used(_plan(searchable, query, ("diabetes medication",))) == {FTS_INDEX}
        found = searchable.execute(query, ("diabetes medication",)).fetchall()
        assert len(found) == ROWS // 100


@pytest.mark.parametrize("operator", ["contains", "overlap"])
def test_keyword_searches_use_the_gin_index(
    searchable: psycopg.Connection[Any], engine: Engine, operator: str
) -> None:
    condition = getattr(col(CallAnalysis.keywords_detected), operator)(["diabetes", "insurance"])
    statement = select(col(CallAnalysis.call_id)).where(condition)
    # On a few thousand rows a sequential scan is rightly cheaper than a GIN lookup (the
    # planner switches on larger tables); with scans priced out, what is left to show is that
    # the operator the ORM emits is one the index serves.
    searchable.execute("SET enable_seqscan = off")
    plan = _orm_plan(searchable, engine, statement)
    searchable.execute("RESET enable_seqscan")
    assert _indexes_used(plan) == {KEYWORDS_INDEX}
    compiled = statement.compile(dialect=engine.dialect)
    found = searchable.execute(sql.SQL(compiled.string), compiled.params).fetchall()
    assert len(found) == ROWS // 100


def test_the_plan_is_read_from_json(searchable: psycopg.Connection[Any]) -> None:
    """The helpers above see a sequential scan when there is one (a search with no index)."""
    plan = _plan(searchable, sql.SQL("SELECT * FROM call_transcripts WHERE message_count = 1"))
    assert "Seq Scan" in _scans(plan)
    assert _indexes_used(plan) == set()
    assert json.dumps(plan)
