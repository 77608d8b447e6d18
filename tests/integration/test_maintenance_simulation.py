"""Twenty-six months of simulated time: each month rotation runs, calls are finalized (one of
them spanning the turn of the month, every third one from Azure) and retention runs. After
every step the partitions, the archive and every call are checked."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import psycopg
from sqlalchemy import Engine

from models.base import PARTITIONED_TABLES
from models.enums import ArchiveStatus
from tests.helpers import (
    assert_whole_or_gone,
    attached_months,
    drop_all_partitions,
    orphan_rows,
    store_call,
)
from worker.maintenance import archive
from worker.maintenance.expiry import first_kept_month, retention_cutoff
from worker.maintenance.partitions import add_months, month_range
from worker.maintenance.retention import enforce_retention
from worker.maintenance.retention_rules import RetentionPolicy
from worker.maintenance.rotation import rotate_partitions

FIRST = date(2025, 6, 1)
STEPS = 26
POLICY = RetentionPolicy(retention_days=365, grace_days=7)


def test_twenty_six_months_of_rotation_finalize_and_retention(
    conn: psycopg.Connection[Any], engine: Engine
) -> None:
    drop_all_partitions(conn)
    calls: dict[UUID, tuple[datetime, dict[str, int]]] = {}
    expired_so_far: set[date] = set()
    for step in range(STEPS):
        month = add_months(FIRST, step)
        now = datetime.combine(month.replace(day=15), time(12), tzinfo=UTC)

        rotation = rotate_partitions(
            conn,
            today=now.date(),
            months_ahead=3,
            oldest=first_kept_month(conn, now=now, retention_days=POLICY.retention_days),
        )
        assert rotation.ok
        assert rotation.horizon == add_months(month, 3)

        month_start = datetime.combine(month, time(0), tzinfo=UTC)
        starts = [
            (now - timedelta(days=2), "azure" if step % 3 == 0 else "runtime"),
            (month_start - timedelta(seconds=8), "runtime"),  # spans the turn of the month
        ]
        for index, (start, source) in enumerate(starts):
            call_id, rows = store_call(engine, step * 10 + index, start, source=source)
            calls[call_id] = (start, rows)

        report = enforce_retention(conn, now=now, policy=POLICY)
        assert report.errors == []
        assert report.kept_back == []

        cut = retention_cutoff(conn, now=now, retention_days=POLICY.retention_days)
        assert cut is not None
        kept = {cid for cid, (start, _) in calls.items() if start >= cut.calls_before}
        assert_whole_or_gone(conn, {cid: rows for cid, (_, rows) in calls.items()}, kept)
        assert orphan_rows(conn) == {}

        # Partitions: from the first kept month (or the first month with data) to the horizon,
        # without a gap, the same on all four tables.
        first_with_data = add_months(FIRST, -1)  # the first spanning call started in May
        lowest = max(first_with_data, cut.keep_from)
        want = month_range(lowest, add_months(month, 3))
        assert attached_months(conn) == dict.fromkeys(PARTITIONED_TABLES, want)

        # Archive: the months that expired at this step are archived; those archived a month
        # ago (more than the 7-day grace) are dropped.
        newly_expired = {m for m in month_range(first_with_data, month) if m < cut.keep_from}
        newly_expired -= expired_so_far
        expired_so_far |= newly_expired
        records = archive.records(conn)
        archived = {
            (r.parent_table, r.month) for r in records if r.status == ArchiveStatus.ARCHIVED
        }
        assert archived == {(t, m) for t in PARTITIONED_TABLES for m in newly_expired}
        assert {r.archived_at for r in records if r.status == ArchiveStatus.ARCHIVED} <= {now}
        dropped = {(r.parent_table, r.month) for r in records if r.status == ArchiveStatus.DROPPED}
        assert dropped == {
            (t, m) for t in PARTITIONED_TABLES for m in expired_so_far - newly_expired
        }

    # Over 26 months the first 14 months of calls expired, the rest are kept.
    assert len(kept) == 2 * 12
    assert len(expired_so_far) == STEPS - 12
