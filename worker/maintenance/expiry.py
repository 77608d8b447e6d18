"""When data expires, asked of the database: the rules live in SQL functions (revision 0007).

Seed 001's runbook functions (``create_monthly_partitions()``, ``cleanup_old_partitions()``,
``drop_old_partitions()``) run inside PostgreSQL, so the rules they apply are SQL functions; the
rotation and retention services ask the same functions here, so a month, a call or an archived
partition expires at the same instant whichever of them looks. ``retention_rules.decide`` then
works from the answers without I/O.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import psycopg

from worker.maintenance.retention_rules import Cutoff


def retention_cutoff(
    conn: psycopg.Connection[Any], *, now: datetime, retention_days: int
) -> Cutoff | None:
    """The cutoff at ``now``: calls that started before ``now - retention_days`` are expired,
    and so are the months that end at least the clock skew before that. None when retention is
    off (``retention_days == 0``)."""
    row = conn.execute(
        "SELECT calls_before, keep_from FROM callstore_retention_cutoff(%s, %s)",
        (retention_days, now),
    ).fetchone()
    return Cutoff(row[0], row[1]) if row is not None else None


def first_kept_month(
    conn: psycopg.Connection[Any], *, now: datetime, retention_days: int
) -> date | None:
    """The oldest month rotation should keep partitions for (None: every month)."""
    found = retention_cutoff(conn, now=now, retention_days=retention_days)
    return found.keep_from if found else None


def months_held_from(
    conn: psycopg.Connection[Any], *, since: datetime | None = None
) -> date | None:
    """The first month the stored calls (those started at or after ``since``) may have rows
    in; None when there is no such call."""
    row = conn.execute("SELECT callstore_months_held_from(%s)", (since,)).fetchone()
    return row[0] if row else None


def drop_due_before(conn: psycopg.Connection[Any], *, now: datetime, grace_days: int) -> datetime:
    """Partitions archived at or before this instant are past their grace period."""
    row = conn.execute(
        "SELECT callstore_archive_drop_due_before(%s, %s)", (grace_days, now)
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]
