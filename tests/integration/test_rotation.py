"""Partition rotation on a real PostgreSQL: the horizon, year boundaries, data that needs a
month, idempotence, and finalizes that keep going while partitions are made."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine

from models.base import PARTITIONED_TABLES
from tests import factories
from tests.helpers import attached_months, drop_all_partitions
from worker.calls.finalize import FinalizeOutcome, finalize_call
from worker.maintenance.partitions import (
    add_months,
    ensure_partitions,
    month_range,
)
from worker.maintenance.rotation import rotate_partitions
from worker.settings import Settings


def _months(first: date, last: date) -> list[date]:
    return month_range(first, last)


def test_rotation_makes_the_current_month_and_the_premade_ones(
    conn: psycopg.Connection[Any],
) -> None:
    drop_all_partitions(conn)
    result = rotate_partitions(conn, today=date(2027, 3, 15), months_ahead=3)
    assert result.ok
    assert result.horizon == date(2027, 6, 1)
    assert len(result.created) == 4 * len(PARTITIONED_TABLES)
    want = _months(date(2027, 3, 1), date(2027, 6, 1))
    assert attached_months(conn) == dict.fromkeys(PARTITIONED_TABLES, want)
    again = rotate_partitions(conn, today=date(2027, 3, 15), months_ahead=3)
    assert again.created == []
    assert again.horizon == date(2027, 6, 1)


def test_rotation_across_a_year_boundary(conn: psycopg.Connection[Any]) -> None:
    drop_all_partitions(conn)
    rotate_partitions(conn, today=date(2026, 11, 20), months_ahead=3)
    result = rotate_partitions(conn, today=date(2026, 12, 31), months_ahead=3)
    assert result.created == [f"{t}_2027_03" for t in PARTITIONED_TABLES]
    assert result.horizon == date(2027, 3, 1)
    want = _months(date(2026, 11, 1), date(2027, 3, 1))
    assert attached_months(conn)["call_metrics"] == want
    # The bounds are right at the turn of the year, to the microsecond.
    for stamp, partition in (
        ("2026-12-31 23:59:59.999999+00", "call_messages_2026_12"),
        ("2027-01-01 00:00:00+00", "call_messages_2027_01"),
    ):
        row = conn.execute(
            "INSERT INTO call_messages (call_id, timestamp, sequence, role, content)"
            " VALUES (gen_random_uuid(), %s, 1, 'user', 'x') RETURNING tableoid::regclass::text",
            (stamp,),
        ).fetchone()
        assert row == (partition,)


def test_rotation_aligns_the_tables_and_makes_months_stored_calls_need(
    conn: psycopg.Connection[Any], settings: Settings, engine: Engine
) -> None:
    drop_all_partitions(conn)
    # A month only one table has (a partial restore, say), and a call from an old month whose
    # timeline partitions were lost: rotation makes both months for all four tables.
    with conn.transaction():
        ensure_partitions(conn, months=[date(2026, 2, 1)], tables=["call_metrics"])
    body = factories.small_payload(5, start=datetime(2026, 5, 10, 9, tzinfo=UTC))
    assert (
        finalize_call(body, settings=settings, task_id=None, engine=engine).outcome
        is FinalizeOutcome.PERSISTED
    )
    conn.execute("DELETE FROM call_messages")
    for table in PARTITIONED_TABLES:
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(f"{table}_2026_05")))
    result = rotate_partitions(conn, today=date(2026, 8, 1), months_ahead=1)
    months = attached_months(conn)
    for table in PARTITIONED_TABLES:
        assert months[table] == [
            date(2026, 2, 1),
            date(2026, 5, 1),
            date(2026, 8, 1),
            date(2026, 9, 1),
        ]
    assert result.horizon == date(2026, 9, 1)


def test_rotation_never_remakes_a_month_retention_expired(conn: psycopg.Connection[Any]) -> None:
    drop_all_partitions(conn)
    with conn.transaction():
        ensure_partitions(conn, months=[date(2025, 1, 1)], tables=["call_messages"])
    rotate_partitions(conn, today=date(2026, 6, 1), months_ahead=0, oldest=date(2025, 6, 1))
    months = attached_months(conn)
    assert months["call_transitions"] == [date(2026, 6, 1)]
    assert months["call_messages"] == [date(2025, 1, 1), date(2026, 6, 1)]  # retention's job


def test_finalizes_keep_succeeding_while_rotation_runs(
    conn: psycopg.Connection[Any], database: Any, settings: Settings, engine: Engine
) -> None:
    """Writers into the current month never fail or wait on rotation's DDL for long; how long
    they wait is measured by ``bench/retention.py``, not asserted here."""
    start = datetime(2026, 11, 20, 10, tzinfo=UTC)
    stop = threading.Event()
    outcomes: list[FinalizeOutcome] = []
    errors: list[BaseException] = []

    def write() -> None:
        seed = 1000
        while not stop.is_set():
            seed += 1
            body = factories.small_payload(seed, start=start + timedelta(minutes=seed))
            try:
                outcomes.append(
                    finalize_call(body, settings=settings, task_id=None, engine=engine).outcome
                )
            except BaseException as error:  # the assertion below shows it
                errors.append(error)
                return

    writer = threading.Thread(target=write)
    writer.start()
    try:
        with database.connect(autocommit=True) as ddl:
            for step in range(24):
                rotate_partitions(ddl, today=add_months(date(2026, 11, 1), step), months_ahead=3)
    finally:
        stop.set()
        writer.join(timeout=60)
    assert not errors
    assert outcomes
    assert set(outcomes) == {FinalizeOutcome.PERSISTED}
    row = conn.execute("SELECT count(*) FROM calls").fetchone()
    assert row == (len(outcomes),)
    assert attached_months(conn)["call_rag_retrievals"][-1] == date(2029, 1, 1)
