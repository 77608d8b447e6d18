"""The workers' Redis transport (``worker.intake.transport``) in this process, against the real
Redis, consumed as Celery's worker does (a kombu consumer, acknowledging): a message is taken
into an in-flight list and leaves it when it is recorded; what kombu could not read is delivered
unread; a worker of several queues serves each; Redis at its memory limit does not stop it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import kombu.transport
import pytest
import redis
from kombu import Connection, Consumer, Producer, Queue  # type: ignore[attr-defined]
from kombu.transport import redis as kombu_redis
from kombu.utils import json as kombu_json

from worker.intake import inflight
from worker.intake.transport import UNREADABLE_CONTENT, install

QUEUE = "calls"


def _in_flight(client: redis.Redis) -> int:
    return sum(int(client.llen(key)) for key in client.keys(inflight.IN_FLIGHT_PREFIX + "*"))


class Received:
    """What a consumer was handed (each acknowledged), and what was in flight at that moment."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.messages: list[Any] = []
        self.in_flight_then: list[int] = []

    def __call__(self, body: Any, message: Any) -> None:
        self.messages.append(message)
        self.in_flight_then.append(_in_flight(self.client))
        message.ack()


class Consuming:
    """A kombu consumer of ``queues`` on the workers' transport, as ``install`` makes it for a
    worker (the URL names the transport, so kombu's aliases must point to it; undone after)."""

    def __init__(
        self, broker_url: str, queues: list[str], callback: Any, *, no_ack: bool = False
    ) -> None:
        self.broker_url = broker_url
        self.queues = queues
        self.callback = callback
        self.no_ack = no_ack
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Consuming:
        saved = {alias: kombu.transport.TRANSPORT_ALIASES[alias] for alias in ("redis", "rediss")}
        self._stack.callback(_restore_aliases, saved)
        install()
        self.connection = self._stack.enter_context(Connection(self.broker_url))  # type: ignore[no-untyped-call]
        self._stack.enter_context(
            Consumer(  # type: ignore[no-untyped-call]
                self.connection.channel(),
                queues=[Queue(q) for q in self.queues],  # type: ignore[no-untyped-call]
                callbacks=[self.callback],
                no_ack=self.no_ack,
            )
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for one delivery; whether one came."""
        try:
            self.connection.drain_events(timeout=timeout)
        except TimeoutError:
            return False
        return True


def _restore_aliases(saved: dict[str, str]) -> None:
    kombu.transport.TRANSPORT_ALIASES.update(saved)
    for alias in saved:
        kombu.transport._transport_cache.pop(alias, None)
    kombu_redis.loads = kombu_json.loads  # type: ignore[attr-defined]


def _consume(broker_url: str, client: redis.Redis, queues: list[str], count: int) -> Received:
    received = Received(client)
    with Consuming(broker_url, queues, received) as consuming:
        for _ in range(count * 4):
            if len(received.messages) >= count:
                break
            consuming.drain(timeout=1)
    assert len(received.messages) == count, f"got {len(received.messages)} of {count}"
    return received


@contextlib.contextmanager
def _kombus_own_transport() -> Iterator[None]:
    """kombu's own Redis transport for the URLs made inside, whatever an earlier import of the
    Celery app (which installs the workers' transport in this process) left in kombu's aliases."""
    saved = {alias: kombu.transport.TRANSPORT_ALIASES[alias] for alias in ("redis", "rediss")}
    _restore_aliases(dict.fromkeys(saved, "kombu.transport.redis:Transport"))
    try:
        yield
    finally:
        _restore_aliases(saved)


def _publish(broker_url: str, queue: str, *bodies: Any, **options: Any) -> None:
    """With kombu's own transport, as the runtime publishes."""
    with _kombus_own_transport(), Connection(broker_url) as plain:  # type: ignore[no-untyped-call]
        producer = Producer(plain.channel())  # type: ignore[no-untyped-call]
        for body in bodies:
            producer.publish(body, routing_key=queue, serializer="json", **options)  # type: ignore[no-untyped-call]


def test_a_message_is_recorded_with_its_bytes_as_sent_and_leaves_no_trace_once_acked(
    broker_url: str, redis_client: redis.Redis
) -> None:
    _publish(broker_url, QUEUE, {"call": 1})
    [entry] = redis_client.lrange(QUEUE, 0, -1)
    assert isinstance(entry, bytes)
    records: list[Any] = []

    def look(body: Any, message: Any) -> None:
        records.append(redis_client.hget("unacked", message.delivery_tag))
        message.ack()

    with Consuming(broker_url, [QUEUE], look) as consuming:
        assert consuming.drain(timeout=5)

    assert records == [b"[" + entry + b',"","calls"]'], "recorded as received, not re-encoded"
    assert _in_flight(redis_client) == 0
    assert redis_client.hlen("unacked") == 0 and redis_client.llen(QUEUE) == 0


def test_the_consumer_registers_and_a_clean_close_ends_it(
    broker_url: str, redis_client: redis.Redis
) -> None:
    _publish(broker_url, QUEUE, {"call": 1})
    received = Received(redis_client)
    with Consuming(broker_url, [QUEUE], received) as consuming:
        assert consuming.drain(timeout=5)
        assert redis_client.keys(inflight.LIVENESS_PREFIX + "*"), "a live consumer says so"
        assert redis_client.hlen(inflight.REGISTRY_KEY) == 1
    assert received.in_flight_then == [0], "out of its list before the consumer sees it"
    assert not redis_client.keys(inflight.LIVENESS_PREFIX + "*")
    assert not redis_client.hlen(inflight.REGISTRY_KEY)


def test_entries_kombu_cannot_read_are_delivered_unread_with_their_bytes(
    broker_url: str, redis_client: redis.Redis
) -> None:
    envelope = {
        "body": "not base64!",
        "content-type": "application/json",
        "headers": {},
        "properties": {
            "body_encoding": "base64",
            "delivery_tag": "bad-body",
            "delivery_info": {"exchange": "", "routing_key": QUEUE},
        },
    }
    entries = [b"[1, 2]", b'{"properties": 5}', b"\xff not json", json.dumps(envelope).encode()]
    redis_client.lpush(QUEUE, *entries)

    received = _consume(broker_url, redis_client, [QUEUE], len(entries))

    assert [m.content_type for m in received.messages] == [UNREADABLE_CONTENT] * len(entries)
    assert [m.body for m in received.messages] == entries
    assert _in_flight(redis_client) == 0 and redis_client.hlen("unacked") == 0


def test_a_worker_of_two_queues_serves_both(broker_url: str, redis_client: redis.Redis) -> None:
    _publish(broker_url, "migration", {"batch": 1})
    _publish(broker_url, "maintenance", {"job": 1})
    received = _consume(broker_url, redis_client, ["maintenance", "migration"], 2)
    queues = sorted(m.delivery_info["routing_key"] for m in received.messages)
    assert queues == ["maintenance", "migration"]


def test_what_another_producer_sent_with_a_priority_is_served_too(
    broker_url: str, redis_client: redis.Redis
) -> None:
    _publish(broker_url, QUEUE, {"urgent": True}, priority=9)
    assert redis_client.llen(QUEUE) == 0, "kombu keeps it in a list of its priority"
    received = _consume(broker_url, redis_client, [QUEUE], 1)
    assert received.messages[0].payload == {"urgent": True}


def test_at_the_memory_limit_the_consumer_still_takes_records_and_acknowledges(
    broker_url: str, redis_client: redis.Redis
) -> None:
    bodies = [{"n": n, "pad": "x" * 200} for n in range(300)]
    _publish(broker_url, QUEUE, *bodies)
    received = Received(redis_client)
    with Consuming(broker_url, [QUEUE], received) as consuming:
        redis_client.config_set("maxmemory-policy", "noeviction")
        used = int(redis_client.info("memory")["used_memory"])
        redis_client.config_set("maxmemory", str(used // 2))
        try:
            with pytest.raises(redis.exceptions.OutOfMemoryError):
                redis_client.set("proof", "that Redis is at its limit")
            for _ in range(20):
                if len(received.messages) >= 5:
                    break
                consuming.drain(timeout=1)
        finally:
            redis_client.config_set("maxmemory", "0")
    assert [m.payload for m in received.messages[:5]] == bodies[:5]
    assert _in_flight(redis_client) == 0 and redis_client.hlen("unacked") == 0


def test_a_consumer_that_acknowledges_nothing_keeps_no_in_flight_list(
    broker_url: str, redis_client: redis.Redis
) -> None:
    """Replies to remote control (``no_ack``): nothing is recorded, so nothing is in flight."""
    _publish(broker_url, "reply.celery.pidbox", {"pong": 1})
    got: list[Any] = []
    with Consuming(
        broker_url, ["reply.celery.pidbox"], lambda body, message: got.append(body), no_ack=True
    ) as consuming:
        assert consuming.drain(timeout=5)
    assert got == [{"pong": 1}]
    assert not redis_client.hlen(inflight.REGISTRY_KEY) and _in_flight(redis_client) == 0


def test_a_worker_of_two_queues_takes_a_backlog_without_waiting_on_the_empty_queue(
    broker_url: str, redis_client: redis.Redis
) -> None:
    """A take waits on one queue at a time (``BLMOVE`` takes from one key): a worker of
    ``calls`` and ``maintenance`` must not spend a wait on the empty ``maintenance`` between
    every two calls of a backlog. Counted in Redis's blocking takes, not in seconds."""
    backlog = 30
    _publish(broker_url, QUEUE, *({"n": n} for n in range(backlog)))
    redis_client.config_resetstat()
    received = _consume(broker_url, redis_client, [QUEUE, "maintenance"], backlog)
    assert [m.payload["n"] for m in received.messages] == list(range(backlog))
    blocking = redis_client.info("commandstats").get("cmdstat_blmove", {"calls": 0})["calls"]
    assert blocking <= 2, f"{blocking} blocking takes for a backlog of {backlog}"
