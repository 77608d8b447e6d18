"""Retention on a real PostgreSQL: calls on both sides of the cutoff and calls spanning it,
archive and grace period, exports verified before the drop, interrupted runs finished by the
next one. A call is always either whole or gone. A ``callstore retention run`` killed midway is
in ``tests/acceptance/test_retention_killed.py``."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine

from models.base import PARTITIONED_TABLES
from models.enums import ArchiveStatus
from tests.catalog import archive_tables
from tests.conftest import Database
from tests.helpers import (
    assert_whole_or_gone,
    attached_months,
    drop_all_partitions,
    leave_detach_pending,
    orphan_rows,
    store_call,
)
from worker.errors import ExportMismatch
from worker.maintenance import archive, retention
from worker.maintenance.partitions import (
    detached_tables,
    list_partitions,
)
from worker.maintenance.retention import enforce_retention, plan_retention
from worker.maintenance.retention_rules import RetentionPolicy
from worker.maintenance.rotation import rotate_partitions

NOW = datetime(2027, 3, 15, 12, tzinfo=UTC)  # cutoff 2026-03-15 12:00, months < 2026-03 expire
POLICY = RetentionPolicy(retention_days=365, grace_days=7)
EXPIRED_MONTHS = (date(2026, 1, 1), date(2026, 2, 1))


def _month_end(year: int, month: int) -> datetime:
    return (
        datetime(year, month + 1, 1, tzinfo=UTC)
        if month < 12
        else datetime(year + 1, 1, 1, tzinfo=UTC)
    )


@pytest.fixture
def history(
    conn: psycopg.Connection[Any], engine: Engine
) -> dict[str, tuple[UUID, dict[str, int]]]:
    """Calls on both sides of the cutoff, some spanning a month boundary, two from Azure."""
    drop_all_partitions(conn)
    rotate_partitions(conn, today=NOW.date(), months_ahead=3)
    starts = {
        "january": (datetime(2026, 1, 10, 9, tzinfo=UTC), "runtime"),
        "jan_to_feb": (_month_end(2026, 1) - timedelta(seconds=8), "runtime"),
        "feb_to_mar": (_month_end(2026, 2) - timedelta(seconds=8), "runtime"),
        "azure_february": (datetime(2026, 2, 10, 9, tzinfo=UTC), "azure"),
        "before_cutoff": (datetime(2026, 3, 15, 11, 59, tzinfo=UTC), "runtime"),
        "after_cutoff": (datetime(2026, 3, 15, 12, 0, 30, tzinfo=UTC), "runtime"),
        "azure_june": (datetime(2026, 6, 1, 9, tzinfo=UTC), "azure"),
        "recent": (datetime(2027, 3, 1, 9, tzinfo=UTC), "runtime"),
    }
    return {
        name: store_call(engine, seed, start, source=source)
        for seed, (name, (start, source)) in enumerate(starts.items(), start=100)
    }


KEPT = {"after_cutoff", "azure_june", "recent"}


def _check(
    conn: psycopg.Connection[Any],
    history: dict[str, tuple[UUID, dict[str, int]]],
    kept: set[str] = KEPT,
) -> None:
    assert_whole_or_gone(conn, dict(history.values()), {history[name][0] for name in kept})
    assert orphan_rows(conn) == {}


def _expired_names() -> list[str]:
    return sorted(f"{t}_{m:%Y_%m}" for t in PARTITIONED_TABLES for m in EXPIRED_MONTHS)


def test_expired_calls_go_whole_and_expired_months_are_archived_then_dropped(
    conn: psycopg.Connection[Any], history: dict[str, tuple[UUID, dict[str, int]]]
) -> None:
    report = enforce_retention(conn, now=NOW, policy=POLICY)
    assert report.errors == []
    assert report.complete
    assert report.calls_deleted == len(history) - len(KEPT)
    # feb_to_mar and before_cutoff had rows in March, a kept month: deleted with their call.
    assert report.timeline_rows_deleted > 0
    _check(conn, history)
    months = attached_months(conn)
    for table in PARTITIONED_TABLES:
        assert months[table][0] == date(2026, 3, 1)
    assert archive_tables(conn) == _expired_names()
    # The archived months still hold the rows of the deleted calls: recoverable.
    january_id = history["january"][0]
    row = conn.execute(
        "SELECT count(*) FROM archive.call_messages_2026_01 WHERE call_id = %s", (january_id,)
    ).fetchone()
    assert row is not None
    assert row[0] == history["january"][1]["call_messages"]
    records = archive.records(conn)
    assert {r.status for r in records} == {ArchiveStatus.ARCHIVED}
    assert {r.archived_at for r in records} == {NOW}

    again = enforce_retention(conn, now=NOW, policy=POLICY)
    assert (again.calls_deleted, again.archived, again.dropped) == (0, [], [])
    assert archive_tables(conn) == _expired_names()

    # Seven days later (the grace period) the archive goes; after_cutoff has expired since.
    later = enforce_retention(conn, now=NOW + timedelta(days=7), policy=POLICY)
    assert sorted(later.dropped) == [f"archive.{name}" for name in _expired_names()]
    assert archive_tables(conn) == []
    assert {r.status for r in archive.records(conn)} == {ArchiveStatus.DROPPED}
    _check(conn, history, kept=KEPT - {"after_cutoff"})


def test_retention_off_changes_nothing(
    conn: psycopg.Connection[Any], history: dict[str, tuple[UUID, dict[str, int]]]
) -> None:
    off = RetentionPolicy(retention_days=0)
    report = enforce_retention(conn, now=NOW + timedelta(days=3650), policy=off)
    assert report.cutoff is None
    assert report.calls_deleted == 0
    assert_whole_or_gone(conn, dict(history.values()), {cid for cid, _ in history.values()})
    assert plan_retention(conn, now=NOW, policy=off).cutoff is None


def _snapshot(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    counts = {}
    for table in ("calls", "call_events", *PARTITIONED_TABLES, "archived_partitions"):
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        ).fetchone()
        counts[table] = row[0] if row else None
    return {"counts": counts, "months": attached_months(conn), "archive": archive_tables(conn)}


def test_the_dry_run_shows_exactly_what_a_run_does_and_changes_nothing(
    conn: psycopg.Connection[Any],
    history: dict[str, tuple[UUID, dict[str, int]]],
    tmp_path: Path,
) -> None:
    # A month archived a week ago is due to be dropped in the same run.
    enforce_retention(conn, now=NOW - timedelta(days=40), policy=POLICY)
    policy = replace(POLICY, export_dir=tmp_path / "exports")
    before = _snapshot(conn)
    plan = plan_retention(conn, now=NOW, policy=policy)
    assert _snapshot(conn) == before
    assert not (tmp_path / "exports").exists()

    report = enforce_retention(conn, now=NOW, policy=policy)
    assert report.errors == []
    assert plan.calls == report.calls_deleted
    assert plan.calls_by_source == {"azure": 1, "runtime": 2}
    assert sorted(f"archive.{p.name}" for p in plan.archive) == sorted(report.archived)
    assert sorted(plan.export) == sorted(report.exported)
    assert sorted(plan.drop) == sorted(report.dropped)
    assert sorted(report.dropped) == [f"archive.{t}_2026_01" for t in sorted(PARTITIONED_TABLES)]
    _check(conn, history)


def test_exports_are_verified_before_the_drop_and_a_mismatch_keeps_the_partition(
    conn: psycopg.Connection[Any],
    history: dict[str, tuple[UUID, dict[str, int]]],
    tmp_path: Path,
) -> None:
    policy = replace(POLICY, export_dir=tmp_path / "exports")
    row = conn.execute("SELECT count(*) FROM call_messages_2026_01").fetchone()
    assert row is not None
    january_rows = row[0]
    report = enforce_retention(conn, now=NOW, policy=policy)
    assert len(report.exported) == len(_expired_names())
    records = {r.archive_name: r for r in archive.records(conn)}
    january = records["call_messages_2026_01"]
    assert january.export_path is not None
    assert january.row_count == january_rows
    manifest = json.loads(Path(january.export_path.removesuffix(".copy.gz") + ".json").read_text())
    assert manifest["rows"] == january.row_count
    assert manifest["checksum"] == january.checksum

    # The export restores: COPY it back into a table shaped like the parent.
    conn.execute("CREATE TEMP TABLE restored (LIKE call_messages)")
    columns = sql.SQL(", ").join(map(sql.Identifier, manifest["columns"]))
    statement = sql.SQL("COPY restored ({}) FROM STDIN").format(columns)
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(gzip.decompress(Path(january.export_path).read_bytes()))
    row = conn.execute("SELECT count(*) FROM restored").fetchone()
    assert row == (january.row_count,)

    # Someone changes an archived table: its export no longer matches, so it is kept.
    conn.execute("DELETE FROM archive.call_messages_2026_01 WHERE sequence = 1")
    later = enforce_retention(conn, now=NOW + timedelta(days=8), policy=policy)
    assert len(later.errors) == 1
    assert "archive.call_messages_2026_01" in later.errors[0]
    assert "archive.call_messages_2026_01" not in later.dropped
    assert len(later.dropped) == len(_expired_names()) - 1
    assert archive_tables(conn) == ["call_messages_2026_01"]
    kept = archive.get(conn, january.id)
    assert kept.status == ArchiveStatus.ARCHIVED
    assert kept.last_error is not None
    assert "holds" in kept.last_error
    with pytest.raises(ExportMismatch):
        archive.verify(conn, kept, now=NOW)
    assert Path(january.export_path).is_file()  # exports stay after the drop


def test_a_detach_left_pending_is_finalized_by_the_next_run(
    conn: psycopg.Connection[Any],
    database: Database,
    history: dict[str, tuple[UUID, dict[str, int]]],
) -> None:
    # A run recorded the detach, then was cut off while DETACH CONCURRENTLY waited for an old
    # transaction: the partition is left "pending detach".
    partition = next(p for p in list_partitions(conn) if p.name == "call_metrics_2026_01")
    archive.record_detach(conn, partition, now=NOW)
    with database.connect() as reader:
        leave_detach_pending(conn, reader, partition)
    pending = [p.name for p in list_partitions(conn) if p.detach_pending]
    assert pending == ["call_metrics_2026_01"]
    assert plan_retention(conn, now=NOW, policy=POLICY).finalize == pending

    report = enforce_retention(conn, now=NOW, policy=POLICY)
    assert report.errors == []
    assert report.finalized == ["call_metrics_2026_01"]
    assert "archive.call_metrics_2026_01" in report.archived
    assert archive_tables(conn) == _expired_names()
    _check(conn, history)


def test_a_run_that_fails_between_detach_and_archive_is_finished_by_the_next(
    conn: psycopg.Connection[Any],
    history: dict[str, tuple[UUID, dict[str, int]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def crash(*_: Any, **__: Any) -> str:
        raise RuntimeError("killed between detach and archive")

    monkeypatch.setattr(retention, "move_to_archive", crash)
    with pytest.raises(RuntimeError):
        enforce_retention(conn, now=NOW, policy=POLICY)
    monkeypatch.undo()
    # One partition is detached and still in the public schema, recorded as detaching.
    leftovers = [p.name for p in detached_tables(conn)]
    assert leftovers == ["call_messages_2026_01"]
    assert [r.partition_name for r in archive.records(conn)] == ["call_messages_2026_01"]
    # The calls were deleted before anything was detached; the rest of their expired months
    # is still attached until the next run takes it.
    assert_whole_or_gone(
        conn,
        dict(history.values()),
        {history[name][0] for name in KEPT},
        expired_months_attached=True,
    )

    report = enforce_retention(conn, now=NOW, policy=POLICY)
    assert report.errors == []
    assert detached_tables(conn) == []
    assert archive_tables(conn) == _expired_names()
    assert {r.status for r in archive.records(conn)} == {ArchiveStatus.ARCHIVED}
    _check(conn, history)


def test_a_month_is_not_detached_while_a_call_that_may_own_rows_in_it_remains(
    conn: psycopg.Connection[Any],
    database: Database,
    history: dict[str, tuple[UUID, dict[str, int]]],
) -> None:
    # A finalize is rewriting the January call (it holds the row lock): retention skips the
    # call rather than wait, and so keeps January attached until the call can go too.
    with database.connect() as writer:
        writer.execute(
            "SELECT 1 FROM calls WHERE call_id = %s FOR UPDATE", (history["january"][0],)
        )
        report = enforce_retention(conn, now=NOW, policy=POLICY)
        writer.rollback()
    assert report.calls_deleted == len(history) - len(KEPT) - 1
    assert any("call_messages_2026_01" in note for note in report.kept_back)
    assert attached_months(conn)["call_messages"][0] == date(2026, 1, 1)
    assert_whole_or_gone(
        conn,
        dict(history.values()),
        {history[n][0] for n in (*KEPT, "january")},
        expired_months_attached=True,
    )

    report = enforce_retention(conn, now=NOW, policy=POLICY)
    assert report.calls_deleted == 1
    assert report.kept_back == []
    _check(conn, history)
    assert archive_tables(conn) == _expired_names()


def test_a_spent_time_budget_stops_early_and_the_next_run_goes_on(
    conn: psycopg.Connection[Any], history: dict[str, tuple[UUID, dict[str, int]]]
) -> None:
    report = enforce_retention(conn, now=NOW, policy=POLICY, budget_seconds=0)
    assert not report.complete
    assert report.calls_deleted == 0
    assert report.archived == []
    report = enforce_retention(conn, now=NOW, policy=POLICY, budget_seconds=60)
    assert report.complete
    _check(conn, history)


def test_a_month_archived_twice_gets_a_second_archive_name(
    conn: psycopg.Connection[Any], engine: Engine, history: dict[str, tuple[UUID, dict[str, int]]]
) -> None:
    enforce_retention(conn, now=NOW, policy=POLICY)
    # A late call for January (an old payload replayed): finalize makes January again.
    late_id, late_rows = store_call(engine, 999, datetime(2026, 1, 20, 9, tzinfo=UTC))
    assert "call_messages_2026_01" in [p.name for p in list_partitions(conn)]
    report = enforce_retention(conn, now=NOW, policy=POLICY)
    assert report.errors == []
    assert report.calls_deleted == 1
    assert sorted(report.archived) == sorted(f"archive.{t}_2026_01_2" for t in PARTITIONED_TABLES)
    assert_whole_or_gone(conn, {late_id: late_rows}, set())
    assert "call_messages_2026_01_2" in archive_tables(conn)
    dropped = enforce_retention(conn, now=NOW + timedelta(days=8), policy=POLICY).dropped
    assert len(dropped) == len(_expired_names()) + len(PARTITIONED_TABLES)
    assert archive_tables(conn) == []
