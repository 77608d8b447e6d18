"""Retry policy shared by tasks: Celery's own exponential backoff with full jitter and a cap."""

from __future__ import annotations

from celery import Task
from celery.utils.time import get_exponential_backoff_interval

from worker.settings import Settings


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


def retries_left(task: Task, settings: Settings) -> bool:
    return int(task.request.retries) < settings.finalize_max_retries
