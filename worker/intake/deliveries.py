"""How often each message was delivered, counted in Redis by the worker's main process.

A message is counted each time a worker takes it, before the pool runs it, under its task id
and retry number (a Celery retry is a new message with the same id). A task that ends — stored,
dead-lettered or retried — forgets its count; so the count only grows for a message whose
deliveries all ended with the worker dead (a pool process killed, the whole worker lost). When
it passes ``CALLSTORE_POISON_DELIVERIES``, the message is dead-lettered instead of run again.

Counting is best effort: when Redis does not answer or refuses the write (at its memory limit),
the message runs uncounted rather than waiting.
"""

from __future__ import annotations

from typing import Any

import redis

from worker.client.queues import shared_client
from worker.log import get_logger
from worker.settings import ClientSettings

log = get_logger("callstore.intake.deliveries")

DELIVERIES_PREFIX = "callstore:deliveries:"
#: A count outlives any redelivery (a lost worker's message comes back after the visibility
#: timeout) but not the day.
DELIVERIES_TTL_SECONDS = 24 * 3600


def deliveries_key(task_id: str, retries: int) -> str:
    return f"{DELIVERIES_PREFIX}{task_id}:{retries}"


def count_delivery(settings: ClientSettings, task_id: str, retries: int) -> int | None:
    """This delivery's number (1 for the first); None when Redis cannot count it."""
    key = deliveries_key(task_id, retries)
    try:
        client = shared_client(settings.broker_url.get_secret_value())
        pipe = client.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, DELIVERIES_TTL_SECONDS)
        count, _ = pipe.execute()
    except (redis.RedisError, OSError) as error:
        log.warning("delivery not counted", task_id=task_id, error=str(error))
        return None
    return int(count)


def forget(settings: ClientSettings, task_id: str, retries: int) -> None:
    try:
        shared_client(settings.broker_url.get_secret_value()).delete(
            deliveries_key(task_id, retries)
        )
    except (redis.RedisError, OSError) as error:  # it expires on its own
        log.warning("delivery count not cleared", task_id=task_id, error=str(error))


def forget_deliveries(settings: ClientSettings, request: Any) -> None:
    """The task of ``request`` ended: its message was not poison."""
    if isinstance(request.id, str):
        forget(settings, request.id, int(request.retries or 0))
