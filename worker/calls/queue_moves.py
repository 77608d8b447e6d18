"""Moving a message waiting in a queue to the dead letters, by an operator's hand.

For a message that must not run (one that stops every worker that takes it, before the poison
count catches it), ``callstore queue move QUEUE TASK_ID`` keeps it in ``failed_payloads`` with
its body as it waits in Redis (a compressed body stays compressed), then takes it out of the
queue. The dead letter is written first, so the message is never in neither place; if a worker
takes the message in between, the dead letter is marked ``discarded`` (the message runs).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import redis
from sqlalchemy import Engine, update
from sqlmodel import col

from models.enums import DeadLetterStatus
from models.operations import DeadLetter
from worker.calls import dead_letters
from worker.calls.messages import call_id_in
from worker.client.queues import WaitingMessage, remove_waiting, waiting_messages
from worker.db import session_scope
from worker.errors import MessageMoved


@dataclass(frozen=True, slots=True)
class Move:
    message: WaitingMessage
    dead_letter_id: uuid.UUID
    removed: bool


def find(client: redis.Redis, queue: str, task_id: str) -> WaitingMessage | None:
    return next((m for m in waiting_messages(client, queue) if m.task_id == task_id), None)


def move_to_dead_letters(
    client: redis.Redis, message: WaitingMessage, *, reason: str, engine: Engine | None = None
) -> Move:
    """Dead-letter ``message``, then take it out of its queue."""
    with session_scope(engine) as session:
        dead_letter_id = dead_letters.record(
            session,
            body=message.body,
            task_name=(message.task_name or "unknown")[:100],
            task_id=message.task_id,
            error=MessageMoved(f"moved out of its queue by an operator: {reason}"),
            call_id=call_id_in(message.body),
        )
    removed = remove_waiting(client, message)
    if not removed:
        with session_scope(engine) as session:
            session.execute(
                update(DeadLetter)
                .where(col(DeadLetter.id) == dead_letter_id)
                .values(status=DeadLetterStatus.DISCARDED.value)
            )
    return Move(message, dead_letter_id, removed)
