"""``consistency.check``: the periodic, incremental consistency check."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from celery import Task

from worker.celery_app import app
from worker.consistency.runner import run_check_job
from worker.jobs import Skipped
from worker.settings import get_settings


@app.task(bind=True, name="consistency.check", max_retries=0)
def check(self: Task, full: bool = False) -> dict[str, Any]:
    """Run every check (incrementally unless ``full``) and store the report."""
    report = run_check_job(get_settings(), now=datetime.now(UTC), full=full)
    if isinstance(report, Skipped):
        return {"skipped": True}
    return report.summary()
