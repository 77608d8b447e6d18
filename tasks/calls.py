"""``calls.finalize``: persist one call, retrying transient failures, never dropping it."""

from __future__ import annotations

from typing import Any

import structlog
from celery import Task

from tasks.retry import backoff_seconds, retries_left
from worker.celery_app import app
from worker.dead_letter import call_id_of
from worker.errors import DatabaseUnavailable
from worker.finalize import FinalizeResult, finalize_call, give_up
from worker.log import get_logger
from worker.settings import get_settings

log = get_logger("callstore.tasks.calls")


@app.task(bind=True, name="calls.finalize", max_retries=None)
def finalize(self: Task, payload: Any) -> dict[str, Any]:
    """Persist a finalized call from the runtime (``models.payload.CallPayload``)."""
    settings = get_settings()
    structlog.contextvars.bind_contextvars(call_id=str(call_id_of(payload)))
    try:
        result = finalize_call(payload, settings=settings, task_id=self.request.id)
    except Exception as error:  # transient errors and unforeseen bugs alike: retry, then keep
        result = _retry_or_dead_letter(self, payload, error)
    return result.as_dict()


def _retry_or_dead_letter(task: Task, payload: Any, error: Exception) -> FinalizeResult:
    settings = get_settings()
    attempt = int(task.request.retries) + 1
    log.warning(
        "finalize failed", attempt=attempt, error_class=type(error).__name__, error=str(error)
    )
    if retries_left(task, settings):
        raise task.retry(exc=error, countdown=backoff_seconds(task.request.retries, settings))
    try:
        return give_up(payload, error, task_id=task.request.id)
    except DatabaseUnavailable as unavailable:
        # Not even the dead-letter table is reachable: the message stays in the queue.
        raise task.retry(
            exc=unavailable, countdown=settings.finalize_retry_backoff_max
        ) from unavailable
