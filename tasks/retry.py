"""Retry policy shared by tasks: Celery's own exponential backoff with full jitter and a cap,
and what a task does when the broker refuses the retry message itself.

``Task.retry`` publishes a new message and lets the current one be acknowledged. When that
publish fails (Redis at its memory limit, a broker gone in between), Celery rejects the current
message without requeueing it: the call would be gone from everywhere. ``retry_or_keep``
turns that into ``RetryNotPublished``; the task then keeps its message (unacknowledged, safe
in the broker's ``unacked`` set) and tries the work again in the same process after the backoff
(``run_keeping_the_message``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from celery import Task
from celery.exceptions import Reject, Retry
from celery.utils.time import get_exponential_backoff_interval

from worker.log import get_logger
from worker.settings import Settings

log = get_logger("callstore.tasks.retry")

T = TypeVar("T")


class RetryNotPublished(Exception):
    """The broker refused the retry message; the task keeps its own and tries again here."""

    def __init__(self, countdown: int, reason: BaseException) -> None:
        super().__init__(f"retry not published: {reason}")
        self.countdown = countdown


def backoff_seconds(retries: int, settings: Settings) -> int:
    """Countdown before retry number ``retries + 1``: 1, 2, 4, ... s, jittered, capped."""
    return int(
        get_exponential_backoff_interval(
            factor=1,
            retries=retries,
            maximum=settings.finalize_retry_backoff_max,
            full_jitter=True,
        )
    )


def retry_or_keep(task: Task, error: Exception, *, attempt: int, settings: Settings) -> Retry:
    """The ``Retry`` to raise once the retry message is published; ``RetryNotPublished`` when
    the broker refuses it."""
    countdown = backoff_seconds(attempt, settings)
    log.warning(
        "finalize will be retried",
        attempt=attempt + 1,
        error_class=type(error).__name__,
        error=str(error),
    )
    try:
        retry: Retry = task.retry(exc=error, countdown=countdown, throw=False)
    except Reject as refused:  # Celery's answer to a retry it could not publish
        raise RetryNotPublished(max(1, countdown), refused.reason or refused) from error
    return retry


def run_keeping_the_message(task: Task, work: Callable[[int], T]) -> T:
    """``work(attempt)`` until it returns or raises anything but ``RetryNotPublished``; between
    two tries the message stays with this worker, unacknowledged, for the countdown."""
    attempt = int(task.request.retries)
    while True:
        try:
            return work(attempt)
        except RetryNotPublished as kept:
            log.warning(
                "the broker refused the retry; the message stays with this worker",
                countdown=kept.countdown,
                error=str(kept),
            )
            time.sleep(kept.countdown)
            attempt += 1
