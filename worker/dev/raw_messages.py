"""Messages as any producer could put them on a queue, for the soak and the tests: a Celery
(protocol 2) body encoded by the standard library, published exactly as given, with headers
that may say anything. Our own producers cannot send most of these (pydantic-core refuses JSON
nested past its limit, a lone surrogate); another producer can.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

from kombu.connection import Connection

from models.payload import QUEUE, TASK_NAME
from worker.settings import ClientSettings


def nested(depth: int, bottom: Any = "bottom") -> Any:
    """``bottom`` inside ``depth`` JSON objects."""
    value = bottom
    for _ in range(depth):
        value = {"next": value}
    return value


def task_body(args: Any = (), kwargs: Any = None) -> bytes:
    """A Celery (protocol 2) message body carrying ``args`` and ``kwargs``, as standard JSON."""
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    return json.dumps([list(args), kwargs or {}, embed]).encode()


def publish_raw(
    settings: ClientSettings,
    body: bytes,
    *,
    task: str = TASK_NAME,
    queue: str = QUEUE,
    content_type: str = "application/json",
    compression: str | None = None,
    **headers: Any,
) -> str:
    """Put ``body`` on ``queue`` exactly as given, with Celery's protocol-2 headers for ``task``
    (``headers`` override them). Returns the task id."""
    task_id = str(uuid4())
    values: dict[str, Any] = {
        "lang": "py", "task": task, "id": task_id, "root_id": task_id, "parent_id": None,
        "group": None, "retries": 0, "eta": None, "expires": None, "timelimit": [None, None],
        "argsrepr": "<raw>", "kwargsrepr": "{}", "origin": "raw-producer",
    }  # fmt: skip
    values.update(headers)
    if compression is not None:
        values["compression"] = compression
    url = settings.broker_url.get_secret_value()
    with Connection(url) as connection:  # type: ignore[no-untyped-call]
        connection.Producer().publish(
            body,
            exchange="",
            routing_key=queue,
            headers=values,
            content_type=content_type,
            content_encoding="utf-8",
            correlation_id=task_id,
            retry=False,
        )
    return task_id
