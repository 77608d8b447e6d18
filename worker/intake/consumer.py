"""The workers' Celery consumer (``worker_consumer``): no message stops it, none is dropped.

Celery's own consumer acknowledges and drops a message it cannot decode
(``on_decode_error``), rejects one without a task name or with an unknown one, or with invalid
headers (``on_unknown_message``, ``on_unknown_task``, ``on_invalid_task``), and lets anything
else raised while it builds a task stop the worker. This one:

* passes every ``calls.finalize`` message through the ``Gate`` first (depth, size, shape,
  expiry, delivery count), before Celery decodes or pickles anything of it;
* turns a message the gate refuses, and every message Celery would drop, into a
  ``calls.dead_letter`` task carrying its bytes (``gate.rewrite``), which Celery then runs;
* dead-letters a message the transport gave back unread from lost workers' in-flight lists as
  ``PoisonMessage`` (``worker.intake.inflight``);
* never lets an error in that path out of the main loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery.utils.log import get_logger as celery_logger
from celery.worker.consumer import Consumer

from worker.calls.messages import DEAD_LETTER_TASK
from worker.errors import MessageUndecodable, PoisonMessage
from worker.intake.gate import Gate, refusal_of, rewrite
from worker.intake.inflight import POISON_HEADER
from worker.settings import get_settings

logger = celery_logger(__name__)

Handler = Callable[[Any], Any]


class CallstoreConsumer(Consumer):  # type: ignore[misc]
    _gate: Gate | None = None
    _celery_handler: Handler | None = None

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Handler:
        celery_handler: Handler = super().create_task_handler(*args, **kwargs)
        self._celery_handler = celery_handler
        self._gate = Gate(get_settings())

        def on_task_received(message: Any) -> Any:
            assert self._gate is not None
            refusal = self._gate.inspect(message)
            if refusal is not None:
                rewrite(message, refusal)
            try:
                return celery_handler(message)
            except self.connection_errors:
                raise  # the broker, not the message: Celery reconnects and restores it
            except Exception as error:  # Celery's own handling failed: keep the message
                logger.exception("a message could not be handed to the pool")
                if not message.acknowledged:
                    self._dead_letter(message, error)
                return None

        return on_task_received

    def _dead_letter(self, message: Any, error: BaseException) -> None:
        """Hand ``message`` to ``calls.dead_letter`` with why; if even that cannot be done, it
        stays unacknowledged (Redis gives it back after the visibility timeout)."""
        headers = message.headers if isinstance(message.headers, dict) else {}
        poison = headers.get(POISON_HEADER)
        if isinstance(poison, str):  # given back unread from lost workers (worker.intake.inflight)
            error = PoisonMessage(poison)
        if headers.get("task") == DEAD_LETTER_TASK or self._celery_handler is None:
            logger.critical("a message could not be dead-lettered; it stays unacknowledged")
            return
        try:
            rewrite(message, refusal_of(message, error))
            self._celery_handler(message)
        except Exception:
            logger.critical("a message could not be dead-lettered", exc_info=True)

    def on_decode_error(self, message: Any, exc: BaseException) -> None:
        self._dead_letter(message, exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self._dead_letter(message, MessageUndecodable("the message names no task"))

    def on_unknown_task(self, body: Any, message: Any, exc: BaseException) -> None:
        name = message.headers.get("task") if isinstance(message.headers, dict) else None
        self._dead_letter(message, MessageUndecodable(f"no task named {name!r} exists"))

    def on_invalid_task(self, body: Any, message: Any, exc: BaseException) -> None:
        self._dead_letter(message, MessageUndecodable(f"invalid task message: {exc}"))
