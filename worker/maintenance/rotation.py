"""Partition rotation: the months the timeline tables need, made ahead of the data.

The ``rotate_partitions`` job (beat's ``maintenance.rotate_partitions`` and ``callstore
partitions ensure``) runs ``run_rotation``: under the job's lock, on a maintenance connection,
it makes the current month, ``CALLSTORE_PARTITION_PREMAKE_MONTHS`` ahead, and every month stored
data needs — never one that retention would only take out again. Which months those are is the
SQL function ``callstore_months_to_make`` (revision 0007), which seed 001's
``create_monthly_partitions()`` asks too; this module makes them one short transaction each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg

from worker.db import maintenance_connection
from worker.jobs import JobName, Skipped, exclusive_job
from worker.maintenance.expiry import first_kept_month
from worker.maintenance.partitions import add_months, ensure_partitions, horizon, month_start
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
    retention would only take out again (``callstore_months_to_make``). Each month is made in
    its own short transaction when ``conn`` is in autocommit mode, so the DDL lock is held for
    milliseconds at a time.
    """
    target = add_months(month_start(today), months_ahead)
    months = [
        row[0]
        for row in conn.execute(
            "SELECT callstore_months_to_make(%s, %s, %s)", (months_ahead, oldest, today)
        )
    ]
    created: list[str] = []
    for month in months:
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
                oldest=first_kept_month(conn, now=now, retention_days=settings.retention_days),
            )
        job.details.update(result.as_dict())
    return result
