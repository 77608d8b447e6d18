"""The Celery queues of the system and the Redis they live in.

``worker.celery_app`` routes to the queues; metrics count them; the runtime's outbox asks Redis
whether a call it sent has been settled. Runtime-safe: no database imports.
"""

from __future__ import annotations

import threading
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
