"""``migration.run_batch``: move the next legacy Azure records into the store (beat, 30 s).

Runs batches until every source is caught up or its time budget is spent, then returns; beat's
next run goes on from the checkpoints. Azure unreachable or throttling is retried with Celery's
backoff; a run that finds another holding the job lock returns at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from celery import Task

from tasks.progress import report_progress
from tasks.retry import backoff_seconds
from worker.azure.batch import run_batches
from worker.celery_app import app
from worker.errors import MigrationNotConfigured, TransientError
from worker.log import get_logger
from worker.settings import get_settings

log = get_logger("callstore.tasks.migration")

#: Seconds of batches per run: well inside beat's 30 s period and the visibility timeout.
TIME_BUDGET_S = 20.0
MAX_RETRIES = 3


@app.task(bind=True, name="migration.run_batch", max_retries=None)
def run_batch(self: Task, batch_size: int | None = None) -> dict[str, Any]:
    """Run migration batches (``worker.azure.batch.run_batches``) for up to 20 s."""
    settings = get_settings()
    try:
        result = run_batches(
            settings,
            clock=lambda: datetime.now(UTC),
            batch_size=batch_size,
            deadline_s=TIME_BUDGET_S,
            progress=lambda **counts: report_progress(self, **counts),
        )
    except MigrationNotConfigured as error:
        log.warning("migration not configured", action="migration_skipped", error=str(error))
        return {"skipped": True, "reason": str(error)}
    except TransientError as error:
        attempt = int(self.request.retries) + 1
        log.warning(
            "migration batch failed",
            attempt=attempt,
            error_class=type(error).__name__,
            error=str(error),
        )
        if self.request.retries < MAX_RETRIES:
            raise self.retry(
                exc=error, countdown=backoff_seconds(self.request.retries, settings)
            ) from error
        raise
    return result.as_dict()
