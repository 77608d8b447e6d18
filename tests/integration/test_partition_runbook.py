"""Seed 001's partition runbook, as its operators type it: ``SELECT create_monthly_partitions()``,
``SELECT cleanup_old_partitions()``, ``SELECT drop_old_partitions()`` and the listing and health
queries. The functions apply the rules of ``callstore partitions ensure`` and ``callstore
retention run``: on the same state they reach the same result."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine

from models.base import PARTITIONED_TABLES
from tests.catalog import archive_tables
from tests.conftest import Database
from tests.factories import make_settings
from tests.helpers import (
    assert_whole_or_gone,
    attached_months,
    drop_all_partitions,
    leave_detach_pending,
    orphan_rows,
    store_call,
)
from worker.db import build_engine
from worker.dev import stack
from worker.jobs import JobName, lock_key
from worker.maintenance import archive
from worker.maintenance.expiry import first_kept_month
from worker.maintenance.partitions import (
    add_months,
    list_partitions,
    month_range,
    month_start,
    partition_name,
)
from worker.maintenance.retention import enforce_retention
from worker.maintenance.retention_rules import RetentionPolicy
from worker.maintenance.rotation import rotate_partitions

NOW = datetime(2027, 3, 15, 12, tzinfo=UTC)  # 365 days: calls before 2026-03-15 12:00 expire
POLICY = RetentionPolicy(retention_days=365, grace_days=7)

#: Seed 001's "List Partitions" queries, as written.
LIST_PARTITIONS = """
SELECT tablename
FROM pg_tables
WHERE schemaname = 'public'
  AND tablename LIKE 'call_%_20%'
ORDER BY tablename;
"""
PARTITION_SIZES = """
SELECT
    schemaname,
    tablename,
    pg_size_pretty(pg_total_relation_size(schemaname||'.'||tablename)) AS size
FROM pg_tables
WHERE tablename LIKE 'call_%_20%'
ORDER BY pg_total_relation_size(schemaname||'.'||tablename) DESC;
"""
#: Seed 001's "Monitoring Partition Health" query, as written.
PARTITION_HEALTH = """
WITH months AS (
  SELECT generate_series(
    date_trunc('month', CURRENT_DATE),
    date_trunc('month', CURRENT_DATE + interval '3 months'),
    interval '1 month'
  )::date AS month
)
SELECT
    to_char(month, 'YYYY_MM') AS expected_partition,
    EXISTS(
        SELECT 1 FROM pg_tables
        WHERE tablename = 'call_messages_' || to_char(month, 'YYYY_MM')
    ) AS messages_exists,
    EXISTS(
        SELECT 1 FROM pg_tables
        WHERE tablename = 'call_transitions_' || to_char(month, 'YYYY_MM')
    ) AS transitions_exists,
    EXISTS(
        SELECT 1 FROM pg_tables
        WHERE tablename = 'call_metrics_' || to_char(month, 'YYYY_MM')
    ) AS metrics_exists,
    EXISTS(
        SELECT 1 FROM pg_tables
        WHERE tablename = 'call_rag_retrievals_' || to_char(month, 'YYYY_MM')
    ) AS rag_exists
FROM months
ORDER BY month;
"""


def _lines(conn: psycopg.Connection[Any], query: str, *params: Any) -> list[str]:
    return [row[0] for row in conn.execute(query, params or None)]


def _names(months: list[date]) -> list[str]:
    """Partition names in the order the runbook makes them: by month, then seed 001's table order."""
    return [partition_name(table, month) for month in months for table in PARTITIONED_TABLES]


# -- create_monthly_partitions ---------------------------------------------------------------


def test_create_monthly_partitions_without_arguments_makes_this_month_and_three_ahead(
    conn: psycopg.Connection[Any],
) -> None:
    drop_all_partitions(conn)
    current = month_start(datetime.now(UTC))
    made = _lines(conn, "SELECT create_monthly_partitions();")
    wanted = month_range(current, add_months(current, 3))
    assert made == [f"Created partition: {name}" for name in _names(wanted)]
    assert _lines(conn, "SELECT create_monthly_partitions();") == []  # idempotent
    assert attached_months(conn) == dict.fromkeys(PARTITIONED_TABLES, wanted)
    # Seed 001's health check: every table has the next three months.
    health = conn.execute(PARTITION_HEALTH).fetchall()
    assert [row[0] for row in health] == [f"{m:%Y_%m}" for m in wanted]
    assert all(all(row[1:]) for row in health)
    assert _lines(conn, LIST_PARTITIONS) == sorted(_names(wanted))


def test_the_health_query_sees_a_missing_partition(conn: psycopg.Connection[Any]) -> None:
    next_month = add_months(month_start(datetime.now(UTC)), 1)
    conn.execute(
        sql.SQL("DROP TABLE {}").format(sql.Identifier(partition_name("call_metrics", next_month)))
    )
    health = {row[0]: row[1:] for row in conn.execute(PARTITION_HEALTH)}
    assert health[f"{next_month:%Y_%m}"] == (True, True, False, True)
    assert _lines(conn, "SELECT create_monthly_partitions();") == [
        f"Created partition: {partition_name('call_metrics', next_month)}"
    ]
    assert all(
        all(flags) for flags in {row[0]: row[1:] for row in conn.execute(PARTITION_HEALTH)}.values()
    )


def test_create_monthly_partitions_makes_what_rotation_makes(
    conn: psycopg.Connection[Any], engine: Engine
) -> None:
    """On the same state (stored calls in old and expired months, gaps), the function and the
    rotation make the same partitions: whichever runs second has nothing left to make."""
    drop_all_partitions(conn)
    for seed, start in enumerate(
        [
            datetime(2025, 12, 10, tzinfo=UTC),  # expired on NOW: its month is not remade
            datetime(2026, 3, 31, 23, 59, 55, tzinfo=UTC),  # spans into April
            datetime(2026, 9, 3, tzinfo=UTC),
        ]
    ):
        store_call(engine, seed, start)
    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("call_metrics_2026_09")))
    before = {p.name for p in list_partitions(conn)}

    made = _lines(conn, "SELECT create_monthly_partitions(months_ahead => 2, as_of => %s)", NOW)
    by_sql = {line.removeprefix("Created partition: ") for line in made}
    oldest = first_kept_month(conn, now=NOW, retention_days=365)
    assert rotate_partitions(conn, today=NOW.date(), months_ahead=2, oldest=oldest).created == []

    for name in by_sql:
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
    assert {p.name for p in list_partitions(conn)} == before
    by_rotation = rotate_partitions(conn, today=NOW.date(), months_ahead=2, oldest=oldest).created
    assert _lines(conn, "SELECT create_monthly_partitions(2, 365, %s)", NOW) == []
    assert set(by_rotation) == by_sql
    # September's gap and the horizon; December 2025 has expired, so it is not made again.
    assert by_sql == {
        "call_metrics_2026_09",
        *_names(month_range(date(2027, 3, 1), date(2027, 5, 1))),
    }


# -- cleanup_old_partitions and drop_old_partitions ------------------------------------------


@dataclass(frozen=True)
class Store:
    """A database with an engine, for building the same history twice."""

    conn: psycopg.Connection[Any]
    engine: Engine


#: (seed, start, source) of the calls in each store; kept are those from the cutoff on.
HISTORY = (
    (100, datetime(2026, 1, 10, 9, tzinfo=UTC), "runtime"),
    (101, datetime(2026, 1, 31, 23, 59, 52, tzinfo=UTC), "runtime"),  # into February
    (102, datetime(2026, 2, 28, 23, 59, 52, tzinfo=UTC), "runtime"),  # into March
    (103, datetime(2026, 2, 10, 9, tzinfo=UTC), "azure"),
    (104, datetime(2026, 3, 15, 11, 59, tzinfo=UTC), "runtime"),
    (105, datetime(2026, 3, 15, 12, 0, 30, tzinfo=UTC), "runtime"),
    (106, datetime(2027, 3, 1, 9, tzinfo=UTC), "runtime"),
)


def _build(store: Store) -> dict[UUID, dict[str, int]]:
    drop_all_partitions(store.conn)
    rotate_partitions(store.conn, today=NOW.date(), months_ahead=3)
    return dict(
        store_call(store.engine, seed, start, source=source) for seed, start, source in HISTORY
    )


@pytest.fixture
def twin(pg_admin_url: str, template_database: str, tmp_path: Any) -> Iterator[Store]:
    """A second database from the template, for the same history handled the other way."""
    name = f"twin_{uuid4().hex[:12]}"
    url = stack.create_database(pg_admin_url, name, template=template_database)
    engine = build_engine(make_settings(database_url=url, spool_dir=tmp_path / "spool"))
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            yield Store(conn, engine)
    finally:
        engine.dispose()
        stack.drop_database(pg_admin_url, name)


def _state(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """What a retention run leaves, without ids or times."""
    return {
        "calls": sorted(row[0] for row in conn.execute("SELECT call_id FROM calls")),
        "attached": attached_months(conn),
        "archive": archive_tables(conn),
        "records": sorted(
            (r.partition_name, r.status, r.archive_name) for r in archive.records(conn)
        ),
    }


def test_cleanup_old_partitions_applies_the_rules_of_a_retention_run(
    conn: psycopg.Connection[Any], engine: Engine, twin: Store
) -> None:
    history = _build(Store(conn, engine))
    assert _build(twin) == history

    report = enforce_retention(twin.conn, now=NOW, policy=POLICY)
    lines = _lines(conn, "SELECT cleanup_old_partitions(as_of => %s)", NOW)

    assert _state(conn) == _state(twin.conn)
    kept = {call_id for call_id in history if call_id in _state(conn)["calls"]}
    assert len(kept) == 2  # the call right after the cutoff and the recent one
    assert_whole_or_gone(conn, history, kept)
    assert orphan_rows(conn) == {}
    archived = sorted(f"archive.{p}" for p in _names([date(2026, 1, 1), date(2026, 2, 1)]))
    assert sorted(report.archived) == archived
    assert lines == [
        (
            f"Deleted {report.calls_deleted} expired call(s)"
            f" and {report.timeline_rows_deleted} timeline row(s)"
        ),
        *(
            f"Archived partition: {name} as archive.{name}"
            for name in sorted(_names([date(2026, 1, 1), date(2026, 2, 1)]), key=_by_month)
        ),
    ]
    # Seed 001's listing shows what stays attached; its size query shows the archive too.
    assert _lines(conn, LIST_PARTITIONS) == sorted(
        _names([date(2026, 3, 1), *month_range(date(2027, 3, 1), date(2027, 6, 1))])
    )
    sizes = {(row[0], row[1]) for row in conn.execute(PARTITION_SIZES)}
    assert {name for schema, name in sizes if schema == "archive"} == {
        a.removeprefix("archive.") for a in archived
    }

    # Within the grace period nothing is dropped; after it, the archive is emptied.
    assert _lines(conn, "SELECT drop_old_partitions(as_of => %s)", NOW + timedelta(days=6)) == []
    later = NOW + timedelta(days=8)  # the call 30 s after the first cutoff expires too
    again = enforce_retention(twin.conn, now=later, policy=POLICY)
    assert (again.calls_deleted, sorted(again.dropped)) == (1, archived)
    assert _lines(conn, "SELECT cleanup_old_partitions(365, 7, %s)", later) == [
        f"Deleted 1 expired call(s) and {again.timeline_rows_deleted} timeline row(s)",
        *(f"Dropped partition: {name}" for name in sorted(archived, key=_by_month)),
    ]
    assert _state(conn) == _state(twin.conn)
    assert archive_tables(conn) == []


def _by_month(name: str) -> tuple[str, str]:
    """Archive order: oldest month first, then by table name."""
    table, _, month = name.removeprefix("archive.").rpartition("_20")
    return month, table


def test_drop_old_partitions_leaves_an_exported_partition_to_the_verified_run(
    conn: psycopg.Connection[Any], engine: Engine
) -> None:
    _build(Store(conn, engine))
    enforce_retention(conn, now=NOW, policy=POLICY)
    conn.execute(
        "UPDATE archived_partitions SET export_path = '/srv/exports/x.copy.gz'"
        " WHERE partition_name = 'call_messages_2026_01'"
    )
    lines = _lines(conn, "SELECT drop_old_partitions(7, %s)", NOW + timedelta(days=7))
    assert lines[0] == (
        "Kept: archive.call_messages_2026_01 (exported: callstore retention run verifies the"
        " export, then drops it)"
    )
    assert len(lines) == 2 * len(PARTITIONED_TABLES)
    assert all(line.startswith("Dropped partition: archive.") for line in lines[1:])
    assert archive_tables(conn) == ["call_messages_2026_01"]
    statuses = {r.partition_name: r.status for r in archive.records(conn)}
    assert statuses.pop("call_messages_2026_01") == "archived"
    assert set(statuses.values()) == {"dropped"}


def test_cleanup_keeps_a_month_calls_still_hold_and_a_busy_table(
    conn: psycopg.Connection[Any], engine: Engine, database: Database
) -> None:
    history = _build(Store(conn, engine))
    february_call = list(history)[3]  # started 2026-02-10
    with database.connect() as writer, database.connect() as reader:
        # A finalize is rewriting the February call: it is skipped, so February stays.
        writer.execute("SELECT 1 FROM calls WHERE call_id = %s FOR UPDATE", (february_call,))
        # A long reader of call_metrics: the plain DETACH gives up after 2 s.
        reader.execute("SELECT count(*) FROM call_metrics")
        lines = _lines(conn, "SELECT cleanup_old_partitions(as_of => %s)", NOW)
        writer.rollback()
        reader.rollback()
    january = sorted(_names([date(2026, 1, 1)]))
    assert lines == [
        lines[0],
        *(
            "Kept: call_metrics_2026_01 (its table stayed busy for 2 s: the next run)"
            if name == "call_metrics_2026_01"
            else f"Archived partition: {name} as archive.{name}"
            for name in january
        ),
        *(
            f"Kept: {name} (calls that may own rows in it remain)"
            for name in sorted(_names([date(2026, 2, 1)]))
        ),
    ]
    assert lines[0].startswith("Deleted 4 expired call(s)")  # of 5: the February one waits
    assert "call_metrics_2026_01" not in {r.partition_name for r in archive.records(conn)}
    # The next run (SQL or Python: the same rules) takes what was left.
    enforce_retention(conn, now=NOW, policy=POLICY)
    assert archive_tables(conn) == sorted(_names([date(2026, 1, 1), date(2026, 2, 1)]))


def test_cleanup_leaves_a_pending_detach_to_the_retention_run(
    conn: psycopg.Connection[Any], engine: Engine, database: Database
) -> None:
    _build(Store(conn, engine))
    conn.execute("DELETE FROM calls")
    partition = next(p for p in list_partitions(conn) if p.name == "call_metrics_2026_01")
    with database.connect() as reader:
        leave_detach_pending(conn, reader, partition)
    lines = _lines(conn, "SELECT cleanup_old_partitions(as_of => %s)", NOW)
    assert (
        "Kept: call_metrics_2026_01 (a detach is pending: callstore retention run finishes it)"
        in lines
    )
    assert "call_metrics_2026_01" not in archive_tables(conn)


def test_retention_off_changes_nothing(conn: psycopg.Connection[Any], engine: Engine) -> None:
    _build(Store(conn, engine))
    before = _state(conn)
    assert _lines(conn, "SELECT cleanup_old_partitions(0, 7, %s)", NOW) == [
        "Retention is off (retention_days = 0): nothing expires"
    ]
    assert _state(conn) == before


def test_the_runbook_and_beats_jobs_never_run_at_once(
    conn: psycopg.Connection[Any], database: Database
) -> None:
    with database.connect(autocommit=True) as job:
        job.execute("SELECT pg_advisory_lock(%s)", (lock_key(JobName.ENFORCE_RETENTION),))
        for query in ("SELECT cleanup_old_partitions();", "SELECT drop_old_partitions();"):
            assert _lines(conn, query) == ["Nothing done: a retention run holds its lock"]
        job.execute("SELECT pg_advisory_lock(%s)", (lock_key(JobName.ROTATE_PARTITIONS),))
        conn.execute("SET lock_timeout = '100ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):  # waits for the rotation
            _lines(conn, "SELECT create_monthly_partitions();")
        conn.execute("RESET lock_timeout")
    assert _lines(conn, "SELECT create_monthly_partitions();") == []
    assert _lines(conn, "SELECT drop_old_partitions();") == []
