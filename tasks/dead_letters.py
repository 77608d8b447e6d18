"""``maintenance.replay_dead_letters``: ``callstore dead-letter replay --all`` as a worker task.

For a large backlog: it runs in batches of short transactions and shows its counts in Flower
while it runs. Start it with ``celery -A worker.celery_app call maintenance.replay_dead_letters``.
"""

from __future__ import annotations

from typing import Any

from celery import Task

from models.payload import QUEUE, TASK_NAME
from tasks.progress import report_progress
from worker.calls.dead_letters import replay_pending
from worker.celery_app import app
from worker.client.publisher import get_publisher
from worker.settings import get_settings


@app.task(bind=True, name="maintenance.replay_dead_letters")
def replay_dead_letters(self: Task, batch_size: int = 100) -> dict[str, Any]:
    """Validate again and re-enqueue every pending dead letter."""
    settings = get_settings()
    publisher = get_publisher(settings)

    def send(payload: dict[str, Any]) -> str:
        return publisher.send(TASK_NAME, args=[payload], queue=QUEUE)

    report = replay_pending(
        send,
        max_bytes=settings.max_payload_bytes,
        batch_size=batch_size,
        progress=lambda **counts: report_progress(self, **counts),
    )
    return {**report.counts(), "broker_error": report.broker_error}
