"""Partition rotation: the months the timeline tables need, made ahead of the data.

The ``rotate_partitions`` job (beat's ``maintenance.rotate_partitions`` and ``callstore
partitions ensure``) runs ``run_rotation``: under the job's lock, on a maintenance connection,
it makes the current month, ``CALLSTORE_PARTITION_PREMAKE_MONTHS`` ahead, and every month stored
data needs — never one that retention would only take out again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import psycopg

from worker.db import maintenance_connection
from worker.jobs import JobName, Skipped, exclusive_job
from worker.maintenance.partitions import (
    add_months,
    ensure_partitions,
    existing_months,
    horizon,
    month_bounds,
    month_range,
    month_start,
)
from worker.maintenance.retention_rules import first_kept_month
from worker.settings import Settings


@dataclass(frozen=True, slots=True)
class RotationResult:
    """What a rotation did, and whether the horizon now reaches ``target``."""

    today: date
    target: date
    created: list[str]
    horizon: date | None

    @property
    def ok(self) -> bool:
        return self.horizon is not None and self.horizon >= self.target

    def as_dict(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "target": self.target.isoformat(),
            "horizon": self.horizon.isoformat() if self.horizon else None,
            "created": len(self.created),
            "ok": self.ok,
        }


_CALL_MONTHS = """
WITH RECURSIVE m(month) AS (
    SELECT date_trunc('month', min(started_at) AT TIME ZONE 'UTC')
      FROM calls WHERE started_at >= %(since)s
    UNION ALL
    SELECT (SELECT date_trunc('month', min(c.started_at) AT TIME ZONE 'UTC')
              FROM calls c
             WHERE c.started_at >= (m.month + interval '1 month') AT TIME ZONE 'UTC')
      FROM m WHERE m.month IS NOT NULL
)
SELECT month::date FROM m WHERE month IS NOT NULL
"""


def months_with_calls(conn: psycopg.Connection[Any], *, since: date | None = None) -> set[date]:
    """The months in which stored calls started (from ``since`` on).

    A loose index scan on ``ix_calls_started_at``: one index probe per month, however many
    calls there are.
    """
    lower = month_bounds(since)[0] if since else datetime(1, 1, 1, tzinfo=UTC)
    return {row[0] for row in conn.execute(_CALL_MONTHS, {"since": lower})}


def rotate_partitions(
    conn: psycopg.Connection[Any],
    *,
    today: date,
    months_ahead: int,
    oldest: date | None = None,
) -> RotationResult:
    """Make every month the tables need; return what was created and the horizon.

    Needed are the month of ``today`` and ``months_ahead`` months after it, every month that
    any of the four tables has (so all four stay aligned) and every month in which a stored
    call started — never a month before ``oldest`` (the first month retention keeps), which
    retention would only take out again. Each month is made in its own short transaction when
    ``conn`` is in autocommit mode, so the DDL lock is held for milliseconds at a time.
    """
    current = month_start(today)
    target = add_months(current, months_ahead)
    have = existing_months(conn)
    wanted = set(month_range(current, target)).union(*have.values())
    wanted |= months_with_calls(conn, since=oldest)
    if oldest is not None:
        wanted = {month for month in wanted if month >= month_start(oldest)}
    created: list[str] = []
    for month in sorted(wanted):
        if all(month in months for months in have.values()):
            continue
        with conn.transaction():
            created.extend(ensure_partitions(conn, months=[month]))
    return RotationResult(today, target, created, horizon(conn, today=today))


def run_rotation(settings: Settings, *, now: datetime) -> RotationResult | Skipped:
    """The ``rotate_partitions`` job at ``now``: under its lock, on a connection of its own."""
    with exclusive_job(settings, JobName.ROTATE_PARTITIONS) as job:
        if job is None:
            return Skipped(JobName.ROTATE_PARTITIONS)
        with maintenance_connection(settings) as conn:
            result = rotate_partitions(
                conn,
                today=now.date(),
                months_ahead=settings.partition_premake_months,
                oldest=first_kept_month(now, settings.retention_days),
            )
        job.details.update(result.as_dict())
    return result
