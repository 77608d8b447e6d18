"""Progress of long tasks (migration batches, retention, checks), visible in Flower."""

from __future__ import annotations

from typing import Any

from celery import Task

PROGRESS = "PROGRESS"


def report_progress(task: Task, **counts: Any) -> None:
    """Publish ``counts`` as the task's custom ``PROGRESS`` state.

    The state goes to the result backend (``AsyncResult.info``) and, as a ``task-progress``
    event, to Flower, which shows the latest counts on the task's page while it runs.
    """
    if task.request.id is None:  # called directly, not as a task (tests, CLI)
        return
    task.update_state(state=PROGRESS, meta=counts)
    task.send_event("task-progress", **counts)
