"""``consistency.check``: the periodic, incremental consistency check."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from celery import Task

from worker.celery_app import app
from worker.consistency.runner import run_checks
from worker.jobs import JobName, exclusive_job
from worker.settings import get_settings


@app.task(bind=True, name="consistency.check", max_retries=0)
def check(self: Task, full: bool = False) -> dict[str, Any]:
    """Run every check (incrementally unless ``full``) and store the report."""
    settings = get_settings()
    with exclusive_job(settings, JobName.CONSISTENCY_CHECK) as job:
        if job is None:
            return {"skipped": True}
        report = run_checks(settings, now=datetime.now(UTC), full=full)
        job.details.update(
            report_id=str(report.id), status=report.status, discrepancies=len(report.discrepancies)
        )
        return {
            "report_id": str(report.id),
            "status": report.status,
            "discrepancies": len(report.discrepancies),
        }
