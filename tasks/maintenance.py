"""Periodic maintenance (``beat_schedule.py``): partition rotation, retention, spool flush.

Each shell reads the clock, takes its job's advisory lock (a second run skips, logged by
``worker.jobs``) and calls one service. Time budgets keep every run well inside the broker's
visibility timeout; what a run leaves, the next one finishes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from celery import Task

from tasks.progress import report_progress
from worker.celery_app import app
from worker.client.publisher import drain
from worker.db import maintenance_connection
from worker.errors import MaintenanceIncomplete
from worker.jobs import JobName, exclusive_job
from worker.maintenance import partitions, retention
from worker.settings import get_settings

#: Retention stops deleting and detaching after this long; the next run goes on.
RETENTION_BUDGET_SECONDS = 240
#: Spooled calls re-published per run, so one run stays short whatever piled up.
SPOOL_FLUSH_LIMIT = 5_000

SKIPPED = {"skipped": True}


@app.task(bind=True, name="maintenance.rotate_partitions")
def rotate_partitions(self: Task) -> dict[str, Any]:
    """Keep partitions from the current month to ``CALLSTORE_PARTITION_PREMAKE_MONTHS`` ahead."""
    settings = get_settings()
    now = datetime.now(UTC)
    with exclusive_job(settings, JobName.ROTATE_PARTITIONS) as job:
        if job is None:
            return SKIPPED
        with maintenance_connection(settings) as conn:
            result = partitions.rotate_partitions(
                conn,
                today=now.date(),
                months_ahead=settings.partition_premake_months,
                oldest=retention.first_kept_month(now, settings.retention_days),
            )
        job.details.update(result.as_dict())
        return job.details


@app.task(bind=True, name="maintenance.enforce_retention")
def enforce_retention(self: Task) -> dict[str, Any]:
    """Delete expired calls, archive expired months, drop archives past their grace period."""
    settings = get_settings()
    now = datetime.now(UTC)
    with exclusive_job(settings, JobName.ENFORCE_RETENTION) as job:
        if job is None:
            return SKIPPED
        with maintenance_connection(settings) as conn:
            report = retention.enforce_retention(
                conn,
                now=now,
                policy=retention.RetentionPolicy.from_settings(settings),
                progress=lambda **counts: report_progress(self, **counts),
                budget_seconds=RETENTION_BUDGET_SECONDS,
            )
        job.details.update(report.as_dict())
        if report.errors:
            raise MaintenanceIncomplete("; ".join(report.errors))
        return job.details


@app.task(bind=True, name="maintenance.flush_spool")
def flush_spool(self: Task) -> dict[str, Any]:
    """Re-publish calls spooled in ``CALLSTORE_SPOOL_DIR`` (useful on a shared volume)."""
    settings = get_settings()
    with exclusive_job(settings, JobName.FLUSH_SPOOL) as job:
        if job is None:
            return SKIPPED
        drained = drain(settings, limit=SPOOL_FLUSH_LIMIT)
        result = drained.flushed
        job.details.update(
            sent=result.sent,
            remaining=result.remaining,
            corrupt=result.corrupt,
            broker_error=result.broker_error or drained.reconciled.broker_error,
            outbox_settled=drained.reconciled.settled,
            outbox_redelivered=drained.reconciled.redelivered,
        )
        return job.details
