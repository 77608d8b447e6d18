"""The finalize service on a real PostgreSQL: one transaction, idempotent, never lossy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine

from tests import factories
from worker.calls.finalize import FinalizeOutcome, finalize_call
from worker.maintenance.partitions import existing_months
from worker.settings import Settings


def _count(conn: psycopg.Connection[Any], table: str, call_id: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {} WHERE call_id = %s").format(sql.Identifier(table))
    row = conn.execute(query, (call_id,)).fetchone()
    assert row is not None
    return int(row[0])


def test_rich_call_round_trips(
    settings: Settings, engine: Engine, conn: psycopg.Connection[Any]
) -> None:
    body = factories.payload(seed=7)
    result = finalize_call(body, settings=settings, task_id="t1", engine=engine)
    assert result.outcome is FinalizeOutcome.PERSISTED
    cid = body["call_id"]
    assert _count(conn, "calls", cid) == 1
    assert _count(conn, "call_messages", cid) == len(body["messages"])
    assert _count(conn, "call_metrics", cid) == len(body["metrics"])


def test_duplicate_delivery_leaves_one_copy(
    settings: Settings, engine: Engine, conn: psycopg.Connection[Any]
) -> None:
    body = factories.payload(seed=8)
    first = finalize_call(body, settings=settings, task_id="t1", engine=engine)
    second = finalize_call(body, settings=settings, task_id="t2", engine=engine)
    assert first.outcome is FinalizeOutcome.PERSISTED
    assert second.outcome is FinalizeOutcome.UNCHANGED
    assert _count(conn, "call_messages", body["call_id"]) == len(body["messages"])


@pytest.mark.parametrize(
    "start",
    [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2200, 1, 1, tzinfo=UTC),
        datetime(1, 1, 1, 12, tzinfo=UTC),
        datetime(9999, 12, 31, tzinfo=UTC),
    ],
)
def test_a_call_from_a_broken_clock_is_dead_lettered_naming_the_field_and_makes_no_partition(
    settings: Settings, engine: Engine, conn: psycopg.Connection[Any], start: datetime
) -> None:
    # What another producer with a broken clock sends (CallRecorder itself refuses a clock at
    # the calendar's ends when it is made).
    body = factories.moved_to(factories.small_payload(9), start)
    before = existing_months(conn)
    result = finalize_call(body, settings=settings, task_id="t", engine=engine)
    assert result.outcome is FinalizeOutcome.DEAD_LETTERED
    assert result.error is not None and "started_at" in result.error
    assert existing_months(conn) == before
