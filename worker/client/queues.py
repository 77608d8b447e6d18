"""The Celery queues of the system and the Redis they live in.

``worker.celery_app`` routes to the queues; metrics count them; the runtime's outbox asks Redis
whether a call it sent has been settled; ``callstore queue`` lists the messages waiting in one
(as kombu keeps them: a JSON envelope per message, its body in base64, pushed on the left and
taken from the right). Runtime-safe: no database imports.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis
from kombu.transport.redis import PRIORITY_STEPS, Channel

#: ``calls``: finalize (and the canary); ``maintenance``: beat jobs; ``migration``: Azure batches.
QUEUES: tuple[str, ...] = ("calls", "maintenance", "migration")

TIMEOUT_SECONDS = 2.0


def redis_client(broker_url: str, *, timeout: float = TIMEOUT_SECONDS) -> redis.Redis:
    """A Redis client for a Celery broker URL (``redis://``, ``rediss://``, ``redis+socket://``)."""
    parts = urlsplit(broker_url)
    if parts.scheme == "redis+socket":
        db = parse_qs(parts.query).get("virtual_host", ["0"])[0]
        return redis.Redis(
            unix_socket_path=parts.path,
            db=int(db or 0),
            password=parts.password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
    return redis.Redis.from_url(broker_url, socket_timeout=timeout, socket_connect_timeout=timeout)


_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def shared_client(broker_url: str) -> redis.Redis:
    """This process's client for ``broker_url``, made on first use (redis-py pools its
    connections and is thread-safe)."""
    with _clients_lock:
        client = _clients.get(broker_url)
        if client is None:
            client = _clients[broker_url] = redis_client(broker_url)
        return client


def queue_keys(queue: str) -> list[str]:
    """The Redis lists holding ``queue``'s messages: kombu adds one per priority step."""
    return [f"{queue}{Channel.sep}{step}" if step else queue for step in PRIORITY_STEPS]


def queue_depths(client: redis.Redis, queues: tuple[str, ...] = QUEUES) -> dict[str, int]:
    """Messages waiting in each queue (not counting those a worker has taken)."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        for key in queue_keys(queue):
            pipe.llen(key)
    lengths = iter(pipe.execute())
    return {queue: sum(int(next(lengths)) for _ in queue_keys(queue)) for queue in queues}


@dataclass(frozen=True, slots=True)
class WaitingMessage:
    """A message in a queue, as Redis holds it: ``raw`` is what ``remove_waiting`` matches."""

    position: int  # 1: the next one a worker takes
    key: str
    raw: bytes
    task_id: str | None
    task_name: str | None
    retries: int | None
    body: bytes
    content_type: str | None
    compression: str | None


def _parse(position: int, key: str, raw: bytes) -> WaitingMessage:
    try:
        envelope: Any = json.loads(raw)
        headers = envelope.get("headers") or {}
        body: bytes = envelope.get("body", "").encode("utf-8", "surrogateescape")
        if (envelope.get("properties") or {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        retries = headers.get("retries")
        return WaitingMessage(
            position,
            key,
            raw,
            task_id=str(headers["id"]) if headers.get("id") is not None else None,
            task_name=str(headers["task"]) if headers.get("task") is not None else None,
            retries=retries if isinstance(retries, int) else None,
            body=body,
            content_type=envelope.get("content-type"),
            compression=headers.get("compression"),
        )
    except (ValueError, TypeError, AttributeError, binascii.Error):  # not kombu's envelope
        return WaitingMessage(position, key, raw, None, None, None, raw, None, None)


def waiting_messages(
    client: redis.Redis, queue: str, *, page: int = 100
) -> Iterator[WaitingMessage]:
    """The messages waiting in ``queue``, the next one a worker takes first, read a page at a
    time (a list that changes meanwhile may show a message twice or skip one)."""
    position = 0
    for key in queue_keys(queue):
        end = -1
        while True:
            items = client.lrange(key, end - page + 1, end)
            for raw in reversed(items):
                position += 1
                yield _parse(position, key, raw if isinstance(raw, bytes) else raw.encode())
            if len(items) < page:
                break
            end -= page


def remove_waiting(client: redis.Redis, message: WaitingMessage) -> bool:
    """Take ``message`` out of its queue; False when a worker took it first."""
    return bool(client.lrem(message.key, 1, message.raw))  # type: ignore[arg-type]
