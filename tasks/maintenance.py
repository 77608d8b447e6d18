"""Periodic maintenance (``beat_schedule.py``): partition rotation, retention, spool flush.

Each shell reads the clock and calls its job's service, which takes the job's advisory lock (a
second run skips, logged by ``worker.jobs``) and its own connection. Time budgets keep every run
well inside the broker's visibility timeout; what a run leaves, the next one finishes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from celery import Task

from tasks.progress import report_progress
from worker.celery_app import app
from worker.client.delivery import publisher_send
from worker.client.publisher import get_publisher
from worker.jobs import Skipped
from worker.maintenance import spool_flush
from worker.maintenance.retention import run_retention
from worker.maintenance.rotation import run_rotation
from worker.settings import get_settings

#: Retention stops deleting and detaching after this long; the next run goes on.
RETENTION_BUDGET_SECONDS = 240
#: Spooled calls re-published per run, so one run stays short whatever piled up.
SPOOL_FLUSH_LIMIT = 5_000

SKIPPED = {"skipped": True}


@app.task(bind=True, name="maintenance.rotate_partitions")
def rotate_partitions(self: Task) -> dict[str, Any]:
    """Keep partitions from the current month to ``CALLSTORE_PARTITION_PREMAKE_MONTHS`` ahead."""
    result = run_rotation(get_settings(), now=datetime.now(UTC))
    if isinstance(result, Skipped):
        return SKIPPED
    return result.as_dict()


@app.task(bind=True, name="maintenance.enforce_retention")
def enforce_retention(self: Task) -> dict[str, Any]:
    """Delete expired calls, archive expired months, drop archives past their grace period."""
    report = run_retention(
        get_settings(),
        now=datetime.now(UTC),
        progress=lambda **counts: report_progress(self, **counts),
        budget_seconds=RETENTION_BUDGET_SECONDS,
    )
    if isinstance(report, Skipped):
        return SKIPPED
    if (incomplete := report.incomplete()) is not None:
        raise incomplete
    return report.as_dict()


@app.task(bind=True, name="maintenance.flush_spool")
def flush_spool(self: Task) -> dict[str, Any]:
    """Re-publish calls spooled in ``CALLSTORE_SPOOL_DIR`` (useful on a shared volume)."""
    settings = get_settings()
    send = publisher_send(get_publisher(settings))
    drained = spool_flush.run_spool_flush(settings, send=send, limit=SPOOL_FLUSH_LIMIT)
    if isinstance(drained, Skipped):
        return SKIPPED
    return spool_flush.details(drained)
