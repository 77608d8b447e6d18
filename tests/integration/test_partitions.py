"""Monthly partitions on a real PostgreSQL: idempotent, right at year ends and in the past,
safe from two processes at once, and no DEFAULT partition to hide a missing month.

The template database already holds the months around today, so these tests work in years
far from it.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

from models.base import PARTITIONED_TABLES
from tests.conftest import Database
from worker.db import translate_database_errors
from worker.errors import PartitionMissing
from worker.maintenance.partitions import (
    ensure_horizon,
    ensure_partitions,
    horizon,
    list_partitions,
    partition_name,
)


def _names(tables: tuple[str, ...], *months: date) -> set[str]:
    return {partition_name(table, month) for table in tables for month in months}


def _insert_message(conn: psycopg.Connection[Any], at: datetime) -> str:
    """Insert a message at ``at``; return the partition PostgreSQL routed it to."""
    row = conn.execute(
        "INSERT INTO call_messages (call_id, timestamp, sequence, role, content)"
        " VALUES (%s, %s, 1, 'user', 'hello') RETURNING tableoid::regclass::text",
        (uuid.uuid4(), at),
    ).fetchone()
    assert row is not None
    return str(row[0])


def test_ensure_partitions_is_idempotent(conn: psycopg.Connection[Any]) -> None:
    months = [date(2041, 3, 1), date(2041, 4, 17)]  # any day stands for its month
    first = ensure_partitions(conn, months=months)
    assert set(first) == _names(PARTITIONED_TABLES, date(2041, 3, 1), date(2041, 4, 1))
    assert ensure_partitions(conn, months=months) == []
    assert ensure_partitions(conn, months=[]) == []
    found = [p for p in list_partitions(conn) if p.month and p.month.year == 2041]
    assert len(found) == len(first)


def test_horizon_across_a_year_boundary(conn: psycopg.Connection[Any]) -> None:
    created = ensure_horizon(conn, today=date(2040, 12, 15), months_ahead=2)
    assert set(created) == _names(
        PARTITIONED_TABLES, date(2040, 12, 1), date(2041, 1, 1), date(2041, 2, 1)
    )
    assert ensure_horizon(conn, today=date(2040, 12, 31), months_ahead=2) == []
    assert horizon(conn, today=date(2040, 12, 15)) == date(2041, 2, 1)
    assert horizon(conn, today=date(2040, 11, 30)) is None

    bounds = conn.execute(
        "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = %s",
        ("call_metrics_2040_12",),
    ).fetchone()
    assert bounds == ("FOR VALUES FROM ('2040-12-01 00:00:00+00') TO ('2041-01-01 00:00:00+00')",)

    last_instant = datetime(2040, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert _insert_message(conn, last_instant) == "call_messages_2040_12"
    assert _insert_message(conn, last_instant + timedelta(microseconds=1)) == (
        "call_messages_2041_01"
    )
    # Half past midnight on New Year's Day in Paris is still December in UTC.
    paris = timezone(timedelta(hours=1))
    assert _insert_message(conn, datetime(2041, 1, 1, 0, 30, tzinfo=paris)) == (
        "call_messages_2040_12"
    )


def test_partitions_for_months_in_the_past(conn: psycopg.Connection[Any]) -> None:
    """Migrated Azure calls are years old: their months are made on demand."""
    created = ensure_partitions(conn, months=[date(2019, 12, 1), date(2020, 1, 1)])
    assert set(created) == _names(PARTITIONED_TABLES, date(2019, 12, 1), date(2020, 1, 1))
    assert horizon(conn, today=date(2019, 12, 5)) == date(2020, 1, 1)
    assert _insert_message(conn, datetime(2019, 12, 24, 18, tzinfo=UTC)) == (
        "call_messages_2019_12"
    )


def test_a_partition_has_the_parents_indexes_and_checks(conn: psycopg.Connection[Any]) -> None:
    ensure_partitions(conn, months=[date(2042, 6, 1)])

    def count(query: str, table: str) -> int:
        row = conn.execute(query, (table,)).fetchone()
        assert row is not None
        return int(row[0])

    indexes = "SELECT count(*) FROM pg_indexes WHERE tablename = %s"
    checks = "SELECT count(*) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'c'"
    for table in PARTITIONED_TABLES:
        partition = partition_name(table, date(2042, 6, 1))
        assert count(indexes, partition) == count(indexes, table), partition
        assert count(checks, partition) == count(checks, table), partition
    with pytest.raises(psycopg.errors.CheckViolation, match="ck_call_messages_role"):
        conn.execute(
            "INSERT INTO call_messages (call_id, timestamp, sequence, role, content)"
            " VALUES (%s, '2042-06-02T00:00:00Z', 1, 'robot', 'x')",
            (uuid.uuid4(),),
        )


def test_there_is_no_default_partition_so_a_missing_month_fails_loudly(
    conn: psycopg.Connection[Any],
) -> None:
    assert not any(p.is_default for p in list_partitions(conn))
    with (
        pytest.raises(PartitionMissing, match="no partition of relation"),
        translate_database_errors(),
    ):
        _insert_message(conn, datetime(2037, 7, 7, tzinfo=UTC))
    ensure_partitions(conn, months=[date(2037, 7, 1)])
    assert _insert_message(conn, datetime(2037, 7, 7, tzinfo=UTC)) == "call_messages_2037_07"


def test_two_processes_ensuring_the_same_months_at_once(database: Database) -> None:
    """The advisory lock serializes the DDL: no error, each partition made exactly once."""
    months = [date(2043, 1, 1), date(2043, 2, 1), date(2043, 3, 1)]
    barrier = threading.Barrier(2)
    created: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with database.connect() as connection:  # one transaction, committed on exit
                barrier.wait(timeout=30)
                created.append(ensure_partitions(connection, months=months))
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(len(c) for c in created) == [0, len(PARTITIONED_TABLES) * len(months)]
