"""Progress of long tasks (migration batches, retention, checks, replays), visible in Flower."""

from __future__ import annotations

from typing import Any

from celery import Task

PROGRESS = "PROGRESS"


def report_progress(task: Task, **counts: Any) -> None:
    """Publish ``counts`` as the task's custom ``PROGRESS`` state.

    The state goes to the result backend (``AsyncResult(id).info`` is ``counts``) and, as a
    ``task-progress`` event, to Flower, which then shows the task as ``PROGRESS``. Flower keeps
    only its known task fields, so the counts travel as ``result`` as well: the task list and
    ``/api/task/info/<id>`` show them while the task runs, until its real result replaces them.
    """
    if task.request.id is None:  # called directly, not as a task (tests, CLI)
        return
    task.update_state(state=PROGRESS, meta=counts)
    task.send_event("task-progress", result=repr(counts), progress=counts)
