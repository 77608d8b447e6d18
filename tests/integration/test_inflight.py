"""The in-flight lists of the workers' consumers (``worker.intake.inflight``) against the real
Redis: what a consumer takes is always in its queue, an in-flight list or ``unacked``; the sweep
gives back what dead consumers held, in order, and only theirs; all of it goes on at Redis's
memory limit."""

from __future__ import annotations

import json

import pytest
import redis

from tests.helpers import wait_until
from worker.intake import inflight
from worker.intake.transport import read_entry

QUEUE = "calls"
TTL = 30


def _consumer(client: redis.Redis) -> str:
    consumer = inflight.new_consumer_id()
    inflight.heartbeat(client, consumer, [QUEUE], TTL)
    return consumer


def _take(client: redis.Redis, consumer: str, queue: str = QUEUE) -> bytes | None:
    """What a worker's channel does (``BLMOVE``), without waiting."""
    return client.lmove(queue, inflight.in_flight_key(consumer, queue), "RIGHT", "LEFT")  # type: ignore[return-value]


def _die(client: redis.Redis, consumer: str) -> None:
    """What a killed consumer leaves: its liveness key expires."""
    client.delete(inflight.liveness_key(consumer))


def _next_taken(client: redis.Redis, count: int) -> list[bytes]:
    return [client.rpop(QUEUE) for _ in range(count)]  # type: ignore[misc]


def test_the_sweep_gives_a_dead_consumers_messages_back_first_and_in_order(
    redis_client: redis.Redis,
) -> None:
    redis_client.lpush(QUEUE, b"m1", b"m2", b"later")
    dead, alive = _consumer(redis_client), _consumer(redis_client)
    assert _take(redis_client, dead) == b"m1"
    assert _take(redis_client, dead) == b"m2"
    redis_client.lpush(QUEUE, b"newest")
    assert _take(redis_client, alive) == b"later"
    _die(redis_client, dead)

    swept = inflight.sweep(redis_client, poison_limit=3)

    assert swept == inflight.Swept(restored=2, unread=0)
    assert _next_taken(redis_client, 3) == [b"m1", b"m2", b"newest"]
    assert redis_client.lrange(inflight.in_flight_key(alive, QUEUE), 0, -1) == [b"later"]
    assert not redis_client.exists(inflight.in_flight_key(dead, QUEUE))
    assert set(redis_client.hkeys(inflight.REGISTRY_KEY)) == {
        inflight.in_flight_key(alive, QUEUE).encode()
    }
    assert inflight.sweep(redis_client, poison_limit=3) == inflight.Swept(0, 0)


def test_a_consumer_whose_heartbeat_stops_is_swept_once_its_liveness_expires(
    redis_client: redis.Redis,
) -> None:
    redis_client.lpush(QUEUE, b"m1")
    consumer = inflight.new_consumer_id()
    inflight.heartbeat(redis_client, consumer, [QUEUE], 0.3)
    _take(redis_client, consumer)
    assert inflight.sweep(redis_client, poison_limit=3).restored == 0, "it lives yet"
    wait_until(
        lambda: inflight.sweep(redis_client, poison_limit=3).restored,
        timeout=10,
        what="the consumer's liveness to expire",
    )
    assert redis_client.lrange(QUEUE, 0, -1) == [b"m1"]


def test_a_heartbeat_after_a_lapse_registers_the_lists_a_sweep_dropped(
    redis_client: redis.Redis,
) -> None:
    """A consumer only slow (its liveness expired, its lists swept) goes on taking: its next
    heartbeat registers its lists again, so a later death of it is still swept."""
    consumer = _consumer(redis_client)
    assert inflight.heartbeat(redis_client, consumer, [QUEUE], TTL, register=False)
    _die(redis_client, consumer)
    inflight.sweep(redis_client, poison_limit=3)
    assert not redis_client.hlen(inflight.REGISTRY_KEY)

    assert not inflight.heartbeat(redis_client, consumer, [QUEUE], TTL, register=False)

    assert redis_client.hkeys(inflight.REGISTRY_KEY) == [
        inflight.in_flight_key(consumer, QUEUE).encode()
    ]
    redis_client.lpush(QUEUE, b"m1")
    _take(redis_client, consumer)
    _die(redis_client, consumer)
    assert inflight.sweep(redis_client, poison_limit=3).restored == 1


def test_recording_takes_the_message_out_of_its_list_and_keeps_its_bytes(
    redis_client: redis.Redis,
) -> None:
    entry = json.dumps({"body": "e30=", "properties": {"delivery_tag": "t1"}}).encode()
    redis_client.lpush(QUEUE, entry)
    consumer = _consumer(redis_client)
    assert _take(redis_client, consumer) == entry

    inflight.record_unacked(
        redis_client,
        unacked_index="unacked_index",
        unacked="unacked",
        in_flight=inflight.in_flight_key(consumer, QUEUE),
        tag="t1",
        at=1234.5,
        entry=entry,
        exchange="",
        routing_key=QUEUE,
    )

    assert redis_client.llen(inflight.in_flight_key(consumer, QUEUE)) == 0
    assert redis_client.zscore("unacked_index", "t1") == 1234.5
    record = redis_client.hget("unacked", "t1")
    assert record == b"[" + entry + b',"","calls"]'
    assert json.loads(record)[0] == json.loads(entry)


def test_release_gives_back_a_live_consumers_lists_and_ends_it(
    redis_client: redis.Redis,
) -> None:
    redis_client.lpush(QUEUE, b"m1")
    consumer = _consumer(redis_client)
    _take(redis_client, consumer)

    assert inflight.sweep(redis_client, poison_limit=3, release=consumer).restored == 1

    assert redis_client.lrange(QUEUE, 0, -1) == [b"m1"]
    assert not redis_client.exists(inflight.liveness_key(consumer))
    assert not redis_client.hlen(inflight.REGISTRY_KEY)


def test_an_entry_given_back_too_often_goes_back_unread_for_the_dead_letters(
    redis_client: redis.Redis,
) -> None:
    """An entry whose reading kills every worker in turn would otherwise go round for ever."""
    entry = b'{"not": "utf-8 \xff\xfe", "quote": "\\"", "nul": "\x00"}'
    redis_client.lpush(QUEUE, entry)
    for _ in range(2):
        consumer = _consumer(redis_client)
        assert _take(redis_client, consumer) == entry
        _die(redis_client, consumer)
        assert inflight.sweep(redis_client, poison_limit=3) == inflight.Swept(1, 0)

    consumer = _consumer(redis_client)
    assert _take(redis_client, consumer) == entry
    _die(redis_client, consumer)
    assert inflight.sweep(redis_client, poison_limit=3) == inflight.Swept(1, 1)

    unread, readable = read_entry(redis_client.rpop(QUEUE), QUEUE)  # type: ignore[arg-type]
    assert readable, "the message given back is an envelope kombu reads"
    assert unread["content-type"] == inflight.UNREAD_CONTENT
    assert unread["body"].encode("utf-8", "surrogateescape") == entry
    assert "taken 3 times" in unread["headers"][inflight.POISON_HEADER]
    assert unread["properties"]["delivery_info"]["routing_key"] == QUEUE
    assert not redis_client.keys(inflight.RESTORED_PREFIX + "*"), "its count is done with"


def test_fold_moves_what_was_sent_with_a_priority_to_the_far_end_in_order(
    redis_client: redis.Redis,
) -> None:
    stray = f"{QUEUE}\x06\x163"
    redis_client.lpush(QUEUE, b"waiting")
    redis_client.lpush(stray, b"p1", b"p2")

    assert inflight.fold(redis_client, [(stray, QUEUE)]) == 2

    assert _next_taken(redis_client, 3) == [b"waiting", b"p1", b"p2"]
    assert not redis_client.exists(stray)


def test_at_the_memory_limit_taking_recording_and_sweeping_go_on(
    redis_client: redis.Redis,
) -> None:
    entries = [json.dumps({"n": n, "pad": "x" * 200}).encode() for n in range(2000)]
    redis_client.lpush(QUEUE, *entries)
    dead, alive = _consumer(redis_client), _consumer(redis_client)
    assert _take(redis_client, dead) == entries[0]
    _die(redis_client, dead)
    redis_client.config_set("maxmemory-policy", "noeviction")
    redis_client.config_set("maxmemory", str(int(redis_client.info("memory")["used_memory"]) // 2))
    try:
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            redis_client.blmove(QUEUE, inflight.in_flight_key(alive, QUEUE), 1, "RIGHT", "LEFT")
        taken = redis_client.eval(inflight.TAKE, 2, QUEUE, inflight.in_flight_key(alive, QUEUE))
        assert taken == [QUEUE.encode(), entries[1]]
        inflight.record_unacked(
            redis_client,
            unacked_index="unacked_index",
            unacked="unacked",
            in_flight=inflight.in_flight_key(alive, QUEUE),
            tag="t",
            at=1.0,
            entry=entries[1],
            exchange="",
            routing_key=QUEUE,
        )
        inflight.heartbeat(redis_client, inflight.new_consumer_id(), [QUEUE], TTL)
        assert inflight.sweep(redis_client, poison_limit=3).restored == 1
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            redis_client.set("anything", "else")  # still at the limit: the checks prove it
    finally:
        redis_client.config_set("maxmemory", "0")
    assert redis_client.hget("unacked", "t") == b"[" + entries[1] + b',"","calls"]'
    assert redis_client.rpop(QUEUE) == entries[0]
