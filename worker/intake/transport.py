"""kombu's Redis transport, made to keep its messages when Redis refuses writes.

Redis at its memory limit (``maxmemory`` with ``noeviction``, the broker's setting) refuses
every command that may grow memory, and every command inside ``MULTI``. kombu's Redis transport
uses both for its bookkeeping, so the first refused write raised out of the worker's main loop
and the worker exited ("Unrecoverable error: OutOfMemoryError"), leaving its messages to wait
out the visibility timeout. Here:

* recording a message just taken as unacknowledged (``ZADD`` + ``HSET``) is tried again until
  Redis takes it: the message is held in this process meanwhile, never dropped;
* acknowledging (``ZREM`` + ``HDEL``) falls back to the same commands outside ``MULTI``,
  which Redis accepts at its limit (they free memory);
* putting a message back (a pool process died under it) is tried again until Redis takes it;
* the periodic sweep for messages of lost workers skips a round instead of failing;
* an entry of a queue that is not a JSON envelope kombu can read (nested past the decoder's
  recursion limit, cut short) is delivered as a message without a task, its bytes as body, so
  the consumer dead-letters it (``worker.intake.consumer``) instead of the worker stopping with
  the entry already taken off the queue.

``install`` makes this the transport of ``redis://``, ``rediss://`` and ``redis+socket://``
URLs in this process (the workers'); the runtime's client keeps kombu's own.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from typing import Any

import kombu.transport
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils import json as kombu_json
from redis.exceptions import ExecAbortError, OutOfMemoryError

from worker.log import get_logger

log = get_logger("callstore.intake.transport")

#: What Redis answers at its memory limit: OOM for a command, EXECABORT for a MULTI holding one.
REFUSED_WRITES = (OutOfMemoryError, ExecAbortError)
_FIRST_WAIT_SECONDS = 0.5
_LONGEST_WAIT_SECONDS = 5.0


def until_accepted(write: Callable[[], Any], what: str) -> None:
    """Run ``write`` until Redis takes it, waiting longer each time (up to 5 s)."""
    wait = _FIRST_WAIT_SECONDS
    while True:
        try:
            write()
            return
        except REFUSED_WRITES as error:
            log.warning(
                "Redis refuses writes (at its memory limit?); trying again",
                action=what,
                retry_in_s=wait,
                error=str(error),
            )
            time.sleep(wait)
            wait = min(wait * 2, _LONGEST_WAIT_SECONDS)


class QoS(kombu_redis.QoS):
    def append(self, message: Any, delivery_tag: Any) -> None:
        def record() -> None:
            kombu_redis.QoS.append(self, message, delivery_tag)  # type: ignore[no-untyped-call]

        until_accepted(record, "record_unacked")

    def ack(self, delivery_tag: Any) -> None:
        try:
            kombu_redis.QoS.ack(self, delivery_tag)  # type: ignore[no-untyped-call]
        except REFUSED_WRITES:
            self._remove_outside_multi(delivery_tag)
            virtual.QoS.ack(self, delivery_tag)  # type: ignore[no-untyped-call]

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        if requeue:

            def put_back() -> None:
                kombu_redis.QoS.reject(self, delivery_tag, requeue=True)  # type: ignore[no-untyped-call]

            until_accepted(put_back, "requeue")
            return
        self.ack(delivery_tag)

    def _remove_outside_multi(self, delivery_tag: Any) -> None:
        with self.channel.conn_or_acquire() as client:
            pipe = client.pipeline(transaction=False)
            pipe.zrem(self.unacked_index_key, delivery_tag)
            pipe.hdel(self.unacked_key, delivery_tag)
            pipe.execute()

    def restore_visible(self, *args: Any, **kwargs: Any) -> None:
        try:
            kombu_redis.QoS.restore_visible(self, *args, **kwargs)  # type: ignore[no-untyped-call]
        except REFUSED_WRITES as error:
            log.warning(
                "Redis refuses writes; unacknowledged messages restored later", error=str(error)
            )

    def restore_unacked(self, client: Any = None) -> None:
        """At shutdown: what Redis refuses to take back stays unacknowledged, and comes back
        after the visibility timeout."""
        with self.channel.conn_or_acquire(client) as connection:
            for tag in list(self._delivered):
                try:
                    self.restore_by_tag(tag, client=connection)  # type: ignore[no-untyped-call]
                except REFUSED_WRITES as error:
                    log.warning("message left unacknowledged", delivery_tag=tag, error=str(error))
        self._delivered.clear()


class Channel(kombu_redis.Channel):
    QoS = QoS


class Transport(kombu_redis.Transport):
    Channel = Channel


#: The content type of an entry delivered in place of one kombu could not read.
UNREADABLE_CONTENT = "application/x-callstore-unreadable"


def loads_or_unreadable(text: str | bytes) -> Any:
    """kombu's JSON decoding of a queue entry; an entry it cannot decode becomes an envelope
    without a task carrying the entry's bytes."""
    try:
        return kombu_json.loads(text)  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, RecursionError):
        raw = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
        return {
            "body": base64.b64encode(raw).decode("ascii"),
            "content-encoding": "binary",
            "content-type": UNREADABLE_CONTENT,
            "headers": {},
            "properties": {
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
                "delivery_info": {"exchange": "", "routing_key": ""},
                "priority": 0,
            },
        }


def install() -> None:
    """Make ``Transport`` the one kombu resolves for Redis URLs, in this process, and let it
    read every queue entry (kombu's Redis channel decodes entries with its module's ``loads``)."""
    for alias in ("redis", "rediss"):
        kombu.transport.TRANSPORT_ALIASES[alias] = f"{__name__}:Transport"
        kombu.transport._transport_cache.pop(alias, None)
    kombu_redis.loads = loads_or_unreadable  # type: ignore[attr-defined,assignment]
