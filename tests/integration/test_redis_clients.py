"""kombu's Redis channel keeps one client for the commands it sends, against a real Redis."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection, Exchange, Producer  # type: ignore[attr-defined]
from kombu.transport import redis as kombu_redis

from worker.intake import clients


@pytest.fixture
def channel(broker_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setattr(kombu_redis.Channel, "_create_client", kombu_redis.Channel._create_client)
    clients.install()
    with Connection(broker_url) as connection:  # type: ignore[no-untyped-call]
        yield connection.default_channel


def test_a_channel_sends_every_command_through_one_client(channel: Any) -> None:
    with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
        assert first is second
    assert channel._create_client(asynchronous=True) is not first, "BRPOP keeps its own"


def test_a_new_pool_gets_a_new_client(channel: Any) -> None:
    with channel.conn_or_acquire() as before:
        pass
    channel._pool = None  # what kombu does when it reconnects
    with channel.conn_or_acquire() as after:
        assert after is not before and after.connection_pool is channel.pool
        assert after.ping()


def test_a_fanout_message_still_reaches_its_subscriber(channel: Any, redis_client: Any) -> None:
    exchange = Exchange("callstore.test.events", type="fanout")  # type: ignore[no-untyped-call]
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.psubscribe("*callstore.test.events*")
    pubsub.get_message(timeout=1)
    producer = Producer(channel, exchange=exchange)  # type: ignore[no-untyped-call]
    producer.publish({"type": "task-succeeded"}, routing_key="x")  # type: ignore[no-untyped-call]
    message = pubsub.get_message(timeout=5)
    assert message is not None
    envelope = json.loads(message["data"])
    assert json.loads(base64.b64decode(envelope["body"])) == {"type": "task-succeeded"}
