"""One Redis client per kombu channel instead of one per command.

kombu's Redis channel makes a new ``redis.Redis`` for every command it sends outside its
``BRPOP`` loop: each task event (three per finalize, for Flower), each record of a message as
unacknowledged, each acknowledgement. A client is only a front for the channel's connection
pool, but building one fills a table of some 170 response callbacks: about half the CPU of a
task event (0.1 ms each), measured in ``bench.waste``. Here the channel keeps the client it
made and makes a new one only when its pool changes (a reconnection). redis-py clients are
thread-safe and take a pooled connection per command, so sharing one changes nothing else:
the commands, their order, the pool, the retries on a broken connection are kombu's own.

``install`` applies to every kombu Redis channel of this process (the worker's); the runtime's
client does not call it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kombu.transport import redis as kombu_redis

_KEPT = "_callstore_kept_client"
_made_by_kombu: Callable[..., Any] = kombu_redis.Channel._create_client


def _kept_client(channel: Any, asynchronous: bool = False) -> Any:
    if asynchronous:  # the BRPOP loop's client, which kombu already keeps
        return _made_by_kombu(channel, asynchronous=True)
    pool = channel.pool
    client = channel.__dict__.get(_KEPT)
    if client is None or client.connection_pool is not pool:
        client = _made_by_kombu(channel)
        channel.__dict__[_KEPT] = client
    return client


def install() -> None:
    kombu_redis.Channel._create_client = _kept_client  # type: ignore[method-assign]
