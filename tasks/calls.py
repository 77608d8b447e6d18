"""``calls.finalize``: persist one call, retrying transient failures, never dropping it."""

from __future__ import annotations

from typing import Any

from celery import Task

from models.payload import ANNOUNCE_TASK_NAME
from tasks.retry import backoff_seconds, retries_left
from tasks.revoked import KeepRevokedCall
from worker.calls import dead_letters
from worker.calls.announcements import record_announcement, validate_announcement
from worker.calls.dead_letters import call_id_of
from worker.calls.finalize import FinalizeResult, dead_letter, finalize_call
from worker.calls.validation import encode
from worker.celery_app import app
from worker.client.settlement import settle
from worker.db import raw_connection, session_scope
from worker.errors import DatabaseUnavailable, PermanentError
from worker.log import get_logger
from worker.settings import get_settings

log = get_logger("callstore.tasks.calls")


@app.task(bind=True, name="calls.finalize", max_retries=None, Request=KeepRevokedCall)
def finalize(self: Task, payload: Any) -> dict[str, Any]:
    """Persist a finalized call from the runtime (``models.payload.CallPayload``); a revoked one
    is dead-lettered instead (``tasks/revoked.py``)."""
    settings = get_settings()
    try:
        result = finalize_call(payload, settings=settings, task_id=self.request.id)
    except DatabaseUnavailable as error:
        # PostgreSQL is down: the call waits in the queue, however long that takes.
        raise _retry(self, error) from error
    except Exception as error:  # transient errors and unforeseen bugs: retry, then dead-letter
        result = _retry_or_dead_letter(self, payload, error)
    settle(settings, payload)  # stored or dead-lettered: the runtime may forget it
    return result.as_dict()


def _retry(task: Task, error: Exception) -> Exception:
    settings = get_settings()
    log.warning(
        "finalize will be retried",
        attempt=int(task.request.retries) + 1,
        error_class=type(error).__name__,
        error=str(error),
    )
    retry: Exception = task.retry(
        exc=error, countdown=backoff_seconds(task.request.retries, settings)
    )
    return retry


def _retry_or_dead_letter(task: Task, payload: Any, error: Exception) -> FinalizeResult:
    if retries_left(task, get_settings()):
        raise _retry(task, error)
    try:
        return dead_letter(payload, error, task_id=task.request.id)
    except DatabaseUnavailable as unavailable:
        raise _retry(task, unavailable) from unavailable


@app.task(bind=True, name=ANNOUNCE_TASK_NAME, max_retries=None)
def announce(self: Task, announcement: Any) -> bool:
    """Record that a call started, so a call that is never finalized can be found."""
    try:
        valid = validate_announcement(announcement)
        with session_scope() as session:
            return record_announcement(raw_connection(session), valid)
    except PermanentError as error:
        with session_scope() as session:
            dead_letters.record(
                session,
                body=encode(announcement),
                task_name=ANNOUNCE_TASK_NAME,
                task_id=self.request.id,
                error=error,
                call_id=call_id_of(announcement),
            )
        return False
    except DatabaseUnavailable as error:
        raise _retry(self, error) from error
