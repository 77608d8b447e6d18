"""What the worker's main process checks of a message before Celery builds a task from it,
and the refusal it makes of one that fails.

Of every message, in order, each check cheap and none recursing over the payload: the headers'
depth, the content type, the size, the body's nesting depth (on the bytes), the decoding. Of a
``calls.finalize`` message also: its task id, an expiry (a call is never dropped for one: a
passed expiry is refused, a future one removed), the argument shape (exactly one payload), and
the delivery count (a message its worker died on too often). A refusal keeps the bytes that
arrived; ``rewrite`` turns the message into a ``calls.dead_letter`` task carrying them, which
Celery then runs like any task.

A call's payload is not decoded here at all: the body is split on its bytes
(``worker.calls.raw_calls``) and only its small tail decoded, so the shape check sees one
argument, a ``RawCall``, which the pool decodes (and refuses, keeping every byte, if the split
was fooled). A body the split does not recognise is decoded here as before.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from celery.utils.time import maybe_iso8601

from models.payload import MAX_JSON_DEPTH, TASK_NAME
from worker.calls.messages import (
    DEAD_LETTER_TASK,
    MESSAGE_DEPTH_LIMIT,
    Refusal,
    json_deeper_than,
    single_payload,
)
from worker.calls.raw_calls import split_call_body
from worker.errors import (
    CallstoreError,
    MessageExpired,
    MessageUndecodable,
    PayloadInvalid,
    PayloadTooLarge,
    PoisonMessage,
)
from worker.intake import deliveries
from worker.intake.compression import ENVELOPE_SLACK_BYTES
from worker.settings import Settings

#: The tasks whose messages carry a call: the gate looks at each before Celery does.
GUARDED_TASKS = frozenset({TASK_NAME})
_ACCEPTED_CONTENT = "application/json"
#: Celery's headers are flat but for a few small mappings (``stamps``, ``timelimit``).
HEADERS_DEPTH_LIMIT = 8
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def body_bytes(message: Any) -> bytes:
    body = message.body
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8", "surrogateescape")
    return b"" if body is None else repr(body).encode()


def refusal_of(message: Any, error: BaseException) -> Refusal:
    """A refusal of ``message`` for ``error``, keeping its bytes as they are now (still
    compressed when decompression is what failed)."""
    headers = message.headers if isinstance(message.headers, dict) else {}
    task_id = headers.get("id")
    error_class = (
        type(error).__name__ if isinstance(error, CallstoreError) else "MessageUndecodable"
    )
    reason = str(error) or type(error).__name__
    if not isinstance(error, CallstoreError):
        reason = f"{type(error).__name__}: {reason}"
    return Refusal(
        error_class=error_class,
        reason=reason,
        body=body_bytes(message),
        task_name=str(headers.get("task") or "")[:100],
        task_id=task_id if isinstance(task_id, str) else None,
        content_type=message.content_type,
    )


def rewrite(message: Any, refusal: Refusal) -> None:
    """Make ``message`` a ``calls.dead_letter`` task carrying ``refusal``: Celery then runs it
    in the pool (so the write and its retries happen where every task's do), and acknowledges
    the original delivery only once the dead letter is stored."""
    task_id = refusal.task_id or str(uuid.uuid4())
    message.headers = {
        "lang": "py", "task": DEAD_LETTER_TASK, "id": task_id, "root_id": task_id,
        "parent_id": None, "group": None, "retries": 0, "eta": None, "expires": None,
        "timelimit": [None, None], "argsrepr": "()",
        "kwargsrepr": f"{{'refused': '<{refusal.error_class}>'}}", "origin": "callstore-intake",
    }  # fmt: skip
    message.body = json.dumps([[], {"refused": refusal.to_json()}, _EMBED]).encode()
    message.content_type = _ACCEPTED_CONTENT
    message.content_encoding = "utf-8"
    message._decoded_cache = None
    message.errors = []


def _keep_payload_undecoded(message: Any, body: bytes) -> bool:
    """Leave a call's payload undecoded for the pool (``worker.calls.raw_calls``): Celery then
    finds the decoded ``[args, kwargs, embed]`` on the message, its one argument a ``RawCall``.
    False (decode as usual) for a body of any other shape, or one with keyword arguments, which
    the shape check refuses with what they are."""
    split = split_call_body(body, message.content_encoding)
    if split is None or split.kwargs:
        return False
    message._decoded_cache = ([split.call], split.kwargs, split.embed)
    return True


class Gate:
    """The checks of one worker process, with its settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.max_body_bytes = settings.max_payload_bytes + ENVELOPE_SLACK_BYTES

    def inspect(self, message: Any) -> Refusal | None:
        """The refusal of ``message``, or None to let Celery run it. Every task's message is
        checked for what would stop the worker (depth, size, decoding); a call's also for its
        shape, expiry and deliveries."""
        headers = message.headers
        if not isinstance(headers, dict) or "task" not in headers:
            return None  # Celery's unknown-message path: the consumer dead-letters it
        try:
            self._check_body(message, headers)
            if headers["task"] in GUARDED_TASKS:
                self._check_call(message, headers)
        except Exception as error:  # whatever the message does, the worker goes on
            return refusal_of(message, error)
        return None

    def _check_call(self, message: Any, headers: dict[str, Any]) -> None:
        task_id = headers.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise MessageUndecodable("the message has no task id")
        self._expiry(headers)
        decoded = message.decode()
        if not isinstance(decoded, list | tuple) or len(decoded) != 3:
            raise PayloadInvalid(
                "calls.finalize takes exactly one argument, the payload; the body is not a"
                " Celery message of arguments"
            )
        single_payload(decoded[0], decoded[1])
        self._deliveries(task_id, headers)

    def _check_body(self, message: Any, headers: dict[str, Any]) -> None:
        if json_deeper_than(json.dumps(headers, default=str).encode(), HEADERS_DEPTH_LIMIT):
            raise MessageUndecodable(f"the headers nest more than {HEADERS_DEPTH_LIMIT} levels")
        if message.content_type != _ACCEPTED_CONTENT:
            raise MessageUndecodable(
                f"content type {message.content_type!r} is not accepted; only JSON is"
            )
        body = body_bytes(message)
        if len(body) > self.max_body_bytes:
            raise PayloadTooLarge(
                f"the message is {len(body)} bytes, over CALLSTORE_MAX_PAYLOAD_BYTES="
                f"{self.settings.max_payload_bytes}"
            )
        if json_deeper_than(body, MESSAGE_DEPTH_LIMIT):
            raise PayloadInvalid(
                f"the message is nested more than {MESSAGE_DEPTH_LIMIT} levels deep; a"
                f" JSON-valued field of a payload may nest at most {MAX_JSON_DEPTH}"
            )
        if headers["task"] in GUARDED_TASKS and _keep_payload_undecoded(message, body):
            return
        try:
            message.decode()  # kept on the message: Celery does not decode it again
        except Exception as error:
            raise MessageUndecodable(f"the body does not decode: {error}") from error

    def _expiry(self, headers: dict[str, Any]) -> None:
        """A passed expiry is refused (the call kept); a future one is removed, so a call
        waiting for a retry is never dropped by Celery when it passes."""
        expires = headers.get("expires")
        if expires is None:
            return
        try:
            when = maybe_iso8601(expires)
        except (AttributeError, ValueError, TypeError) as error:
            raise MessageExpired(f"the message's expiry {expires!r} is not a time") from error
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if when <= datetime.now(UTC):
            raise MessageExpired(f"the message expired at {when.isoformat()}")
        headers["expires"] = None

    def _deliveries(self, task_id: str, headers: dict[str, Any]) -> None:
        retries = headers.get("retries")
        retries = retries if isinstance(retries, int) else 0
        count = deliveries.count_delivery(self.settings, task_id, retries)
        limit = self.settings.poison_deliveries
        if count is not None and count > limit:
            deliveries.forget(self.settings, task_id, retries)
            raise PoisonMessage(
                f"delivered {count - 1} times without completing: its worker died each time"
                f" (CALLSTORE_POISON_DELIVERIES={limit})"
            )
