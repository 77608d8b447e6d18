"""``calls.finalize``: persist one call, retrying transient failures, never dropping it.

A finalize ends in one of three ways, whatever goes wrong: the call is stored, or it is in
``failed_payloads``, or the task retries and the message stays in the broker. No exception
escapes to Celery (which would acknowledge the message and drop the call): an error that
outlasts the retries is dead-lettered, and when even the dead-letter table refuses the write
(PostgreSQL down, read-only, a privilege missing), the task retries for as long as it takes.
When the broker refuses the retry message itself, the task keeps its message and tries again in
this process (``tasks.retry``).

``calls.dead_letter`` keeps a message the worker's main process refused before any task could
run it (``worker.intake``): undecodable, too deep, oversized, of the wrong shape, expired, or one
that killed its worker too often. It carries the bytes that arrived.
"""

from __future__ import annotations

from typing import Any

import structlog
from celery import Task

from models.payload import ANNOUNCE_TASK_NAME, TASK_NAME
from tasks.finalize_request import FinalizeRequest
from tasks.retry import retry_or_keep, run_keeping_the_message
from worker.calls import dead_letters
from worker.calls.announcements import record_announcement, validate_announcement
from worker.calls.dead_letters import call_id_of
from worker.calls.finalize import FinalizeResult, dead_letter, finalize_call
from worker.calls.messages import DEAD_LETTER_TASK, Refusal
from worker.calls.raw_calls import RawCall
from worker.celery_app import app
from worker.client.settlement import settle
from worker.db import raw_connection, session_scope
from worker.errors import DatabaseUnavailable, PermanentError
from worker.intake.deliveries import forget_deliveries
from worker.log import get_logger
from worker.settings import Settings, get_settings

log = get_logger("callstore.tasks.calls")


@app.task(bind=True, name="calls.finalize", max_retries=None, Request=FinalizeRequest)
def finalize(self: Task, payload: Any) -> dict[str, Any]:
    """Persist a finalized call from the runtime (``models.payload.CallPayload``); a revoked one
    is dead-lettered instead (``tasks/revoked.py``). The payload usually arrives as the bytes of
    its message (``worker.calls.raw_calls``), decoded here once."""
    settings = get_settings()
    if isinstance(payload, RawCall):
        try:
            payload = payload.decode()
        except PermanentError as error:  # not one call after all: kept as the guard keeps it
            return _keep_refusal(self, _refusal(payload, error, self.request.id), settings)
        self.request.args = [payload]  # what a retry publishes again
        call_id = call_id_of(payload)
        if call_id is not None:  # the bytes named it already; the decoded payload has the say
            structlog.contextvars.bind_contextvars(call_id=str(call_id))
    result = run_keeping_the_message(
        self, lambda attempt: _finalize_once(self, payload, settings, attempt)
    )
    settle(settings, payload)  # stored or dead-lettered: the runtime may forget it
    forget_deliveries(settings, self.request)
    return result.as_dict()


def _refusal(raw: RawCall, error: PermanentError, task_id: str | None) -> Refusal:
    """What the guard would have kept of a message it could not vouch for: all its bytes."""
    return Refusal(
        error_class=type(error).__name__,
        reason=str(error) or type(error).__name__,
        body=raw.body,
        task_name=TASK_NAME,
        task_id=task_id,
        content_type="application/json",
    )


def _finalize_once(task: Task, payload: Any, settings: Settings, attempt: int) -> FinalizeResult:
    try:
        return finalize_call(payload, settings=settings, task_id=task.request.id)
    except DatabaseUnavailable as error:
        # PostgreSQL is down or refuses writes: the call waits in the queue, however long.
        raise retry_or_keep(task, error, attempt=attempt, settings=settings) from error
    except Exception as error:  # transient errors and unforeseen bugs: retry, then dead-letter
        if attempt < settings.finalize_max_retries:
            raise retry_or_keep(task, error, attempt=attempt, settings=settings) from error
        return _dead_letter_or_retry(task, payload, error, attempt, settings)


def _dead_letter_or_retry(
    task: Task, payload: Any, error: Exception, attempt: int, settings: Settings
) -> FinalizeResult:
    try:
        return dead_letter(payload, error, task_id=task.request.id)
    except Exception as failure:  # not even the dead-letter table takes it: keep the call
        raise retry_or_keep(task, failure, attempt=attempt, settings=settings) from failure


@app.task(bind=True, name=DEAD_LETTER_TASK, max_retries=None)
def dead_letter_message(self: Task, refused: Any = None) -> dict[str, Any]:
    """Keep a message the worker refused before running it, with the bytes that arrived."""
    return _keep_refusal(self, Refusal.from_json(refused), get_settings())


def _keep_refusal(task: Task, refusal: Refusal, settings: Settings) -> dict[str, Any]:
    def once(attempt: int) -> str:
        try:
            with session_scope() as session:
                return str(dead_letters.record_refusal(session, refusal))
        except Exception as error:  # the dead-letter table refuses it: the message waits
            raise retry_or_keep(task, error, attempt=attempt, settings=settings) from error

    dead_letter_id = run_keeping_the_message(task, once)
    forget_deliveries(settings, task.request)
    log.warning(
        "message dead-lettered before running",
        action="dead_letter",
        dead_letter_id=dead_letter_id,
        call_id=str(refusal.call_id) if refusal.call_id else None,
        refused_task=refusal.task_name,
        error_class=refusal.error_class,
        error=refusal.reason[:500],
    )
    return {"outcome": "dead_lettered", "dead_letter_id": dead_letter_id}


@app.task(bind=True, name=ANNOUNCE_TASK_NAME, max_retries=None)
def announce(self: Task, announcement: Any) -> bool:
    """Record that a call started, so a call that is never finalized can be found."""
    settings = get_settings()

    def once(attempt: int) -> bool:
        try:
            return _announce_once(self, announcement)
        except DatabaseUnavailable as error:
            raise retry_or_keep(self, error, attempt=attempt, settings=settings) from error
        except Exception as error:
            if attempt < settings.finalize_max_retries:
                raise retry_or_keep(self, error, attempt=attempt, settings=settings) from error
            try:
                _dead_letter_announcement(self, announcement, error)
            except Exception as failure:
                raise retry_or_keep(self, failure, attempt=attempt, settings=settings) from failure
            return False

    return run_keeping_the_message(self, once)


def _announce_once(task: Task, announcement: Any) -> bool:
    try:
        valid = validate_announcement(announcement)
        with session_scope() as session:
            return record_announcement(raw_connection(session), valid)
    except PermanentError as error:
        refused = error
    _dead_letter_announcement(task, announcement, refused)
    return False


def _dead_letter_announcement(task: Task, announcement: Any, error: Exception) -> None:
    with session_scope() as session:
        dead_letters.record(
            session,
            body=dead_letters.payload_bytes(announcement),
            task_name=ANNOUNCE_TASK_NAME,
            task_id=task.request.id,
            error=error,
            call_id=call_id_of(announcement),
        )
