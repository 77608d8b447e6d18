"""Messages no producer of ours sends, against one real worker: none stops the pipeline, none
is acknowledged and dropped. Each ends in ``failed_payloads`` with the bytes that arrived and
the reason, and the calls behind it are stored.

One worker serves the whole module (``module_settings``); each test tells its calls apart by
their ids or the digest of what it sent.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
import pytest
import redis
from psycopg import sql

from models.payload import ANNOUNCE_TASK_NAME, QUEUE
from tests import factories
from tests.conftest import Database
from tests.helpers import (
    WorkerProcess,
    publish_calls,
    publish_raw,
    task_body,
    wait_until,
)
from worker.calls import dead_letters
from worker.dev import stack
from worker.dev.raw_messages import nested
from worker.errors import PayloadInvalid
from worker.intake import inflight
from worker.settings import Settings


@pytest.fixture(scope="module")
def worker(module_worker: WorkerProcess) -> WorkerProcess:
    return module_worker


def _with_event_data(seed: int, data: Any) -> dict[str, Any]:
    body = factories.small_payload(seed)
    body["events"] = [
        {"sequence": 1, "timestamp": body["started_at"], "event_type": "tool", "event_data": data}
    ]
    return body


def _stored(database: Database, bodies: list[dict[str, Any]]) -> bool:
    ids = [body["call_id"] for body in bodies]
    with database.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM calls WHERE call_id = ANY(%s::uuid[])", (ids,)
        ).fetchone()
    return row == (len(ids),)


class Letter(NamedTuple):
    error_class: str
    error_message: str
    payload: bytes


def _letter(database: Database, column: str, value: str) -> Letter | None:
    with database.connect() as conn:
        row = conn.execute(
            sql.SQL(
                "SELECT error_class, error_message, payload FROM failed_payloads WHERE {} = %s"
            ).format(sql.Identifier(column)),
            (value,),
        ).fetchone()
    return None if row is None else Letter(row[0], row[1], bytes(row[2]))


def _await_letter(
    database: Database, what: str, *, digest: str | None = None, call_id: str | None = None
) -> Letter:
    """The dead letter of a message (by the digest of its bytes) or of a call, once it exists."""
    column, value = ("payload_sha256", digest) if digest else ("call_id", call_id)
    assert value is not None

    def found() -> Letter | None:
        return _letter(database, column, value)

    letter = wait_until(found, timeout=60, what=what)
    assert letter is not None
    return letter


def _sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def test_a_payload_nested_600_levels_deep_cannot_stop_the_pipeline(
    module_settings: Settings, module_database: Database, worker: WorkerProcess
) -> None:
    deep = _with_event_data(9001, nested(600))
    publish_raw(module_settings, task_body([deep]))
    behind = [factories.small_payload(seed) for seed in range(9002, 9005)]
    publish_calls(module_settings, behind)
    wait_until(lambda: _stored(module_database, behind), timeout=60, what="the calls behind it")
    found = _await_letter(module_database, "the deep payload", call_id=deep["call_id"])
    assert "nested" in found.error_message
    assert json.loads(found.payload)  # the bytes that arrived, readable JSON
    assert worker.alive()


def test_unexpected_argument_shapes_are_dead_lettered_with_their_bytes(
    module_settings: Settings, module_database: Database, worker: WorkerProcess
) -> None:
    one, two, three = (factories.small_payload(seed) for seed in range(9010, 9013))
    bodies = [
        task_body([one, one]),
        task_body([two], {"priority": "high"}),
        task_body([], {"payload": three}),
        task_body([]),
    ]
    for body in bodies:
        publish_raw(module_settings, body)
    for body in bodies:
        found = _await_letter(module_database, "each shape, with its bytes", digest=_sha(body))
        assert found.error_class == "PayloadInvalid" and "argument" in found.error_message
    assert _letter(module_database, "call_id", one["call_id"]) is not None
    assert worker.alive()


def test_bodies_the_worker_cannot_decode_are_dead_lettered_with_their_bytes(
    module_settings: Settings, module_database: Database, worker: WorkerProcess
) -> None:
    cut = task_body([factories.small_payload(9020)])[:-40]
    pickled = b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00]\x94."
    publish_raw(module_settings, cut)
    publish_raw(module_settings, pickled, content_type="application/x-python-serialize")
    publish_raw(module_settings, b"\xff\xfe not text")
    for body in (cut, pickled, b"\xff\xfe not text"):
        found = _await_letter(module_database, "each undecodable body", digest=_sha(body))
        assert found.payload == body and found.error_class == "MessageUndecodable"
    assert worker.alive()


def test_what_no_decoder_or_pickler_survives_is_kept_whatever_the_task(
    module_settings: Settings,
    module_database: Database,
    worker: WorkerProcess,
    stack_paths: stack.StackPaths,
) -> None:
    """A start announcement nested 600 levels deep (not a call, and pickled for the pool all
    the same), and a queue entry whose envelope nests past the JSON decoder's recursion limit
    (read by the transport before any consumer sees it)."""
    announcement = task_body([nested(600)])
    publish_raw(module_settings, announcement, task=ANNOUNCE_TASK_NAME)
    entry = b'{"headers": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    redis.Redis(unix_socket_path=str(stack_paths.redis_socket)).lpush(QUEUE, entry)
    behind = [factories.small_payload(9025)]
    publish_calls(module_settings, behind)
    for body in (announcement, entry):
        found = _await_letter(module_database, "each unreadable message", digest=_sha(body))
        assert found.payload == body
    wait_until(lambda: _stored(module_database, behind), timeout=60, what="the call behind them")
    assert worker.alive()


def test_an_entry_whose_worker_is_lost_each_time_it_holds_it_is_dead_lettered_unread(
    module_settings: Settings,
    module_database: Database,
    worker: WorkerProcess,
    stack_paths: stack.StackPaths,
) -> None:
    """An entry that kills the worker reading it, before the worker records it, is taken back
    from each lost worker's in-flight list; the last time it goes back unread, and the worker
    dead-letters its bytes instead of reading it again. (Its earlier losses are arranged in
    Redis: a consumer that took it and is gone, and the count of its previous give-backs.)"""
    entry = b'{"an entry": "that kills the worker reading it", "not utf-8": "\xff"}'
    broker = redis.Redis(unix_socket_path=str(stack_paths.redis_socket))
    lost = inflight.new_consumer_id()
    inflight.heartbeat(broker, lost, [QUEUE], 60)
    broker.lpush(inflight.in_flight_key(lost, QUEUE), entry)
    limit = module_settings.poison_deliveries
    broker.set(inflight.RESTORED_PREFIX + hashlib.sha1(entry).hexdigest(), limit - 1)  # noqa: S324
    broker.delete(inflight.liveness_key(lost))

    found = _await_letter(module_database, "the entry's dead letter", digest=_sha(entry))

    assert found.payload == entry and found.error_class == "PoisonMessage"
    assert f"taken {limit} times" in found.error_message
    assert worker.alive()


def test_what_our_encoder_refuses_from_another_producer_is_kept_as_json(
    module_settings: Settings, module_database: Database, worker: WorkerProcess
) -> None:
    """A split emoji (a lone UTF-16 surrogate) and JSON nested beyond pydantic's encoder, sent
    by a producer that uses the standard library: kept as bytes ``dead-letter replay`` reads
    (and refuses, naming the field), never as a Python ``repr``."""
    split = factories.small_payload(9030)
    split["messages"][0]["content"] = "half an emoji \ud83d"
    deep = _with_event_data(9031, nested(300))
    for body in (split, deep):
        publish_raw(module_settings, task_body([body]))
    letters = [
        _await_letter(module_database, "each payload", call_id=body["call_id"])
        for body in (split, deep)
    ]
    assert all(json.loads(letter.payload) for letter in letters), "dead letters hold JSON"
    assert "messages[0].content" in letters[0].error_message, letters[0].error_message
    with pytest.raises(PayloadInvalid, match=r"messages\[0\]\.content"):
        dead_letters.parse_replayable(
            letters[0].payload, max_bytes=module_settings.max_payload_bytes
        )


def _high_water_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_zlib_bomb_is_dead_lettered_compressed_in_bounded_memory(
    module_settings: Settings, module_database: Database, worker: WorkerProcess
) -> None:
    bomb_call = _with_event_data(9040, "A" * (100 * 1024 * 1024))
    compressed = zlib.compress(task_body([bomb_call]), 9)
    del bomb_call
    assert len(compressed) < 200 * 1024
    processes = [worker.process.pid, *worker.pool_pids()]
    before = {pid: _high_water_kib(pid) for pid in processes}
    publish_raw(module_settings, compressed, compression="application/x-gzip")
    found = _await_letter(module_database, "the bomb, compressed", digest=_sha(compressed))
    assert found.error_class == "PayloadTooLarge"
    assert "CALLSTORE_MAX_PAYLOAD_BYTES" in found.error_message
    limit_kib = module_settings.max_payload_bytes // 1024
    for pid in processes:
        grown = _high_water_kib(pid) - before[pid]
        assert grown < 3 * limit_kib, f"process {pid} grew {grown} KiB"
    assert worker.alive()


def test_an_expired_message_is_dead_lettered(
    module_settings: Settings, module_database: Database, worker: WorkerProcess
) -> None:
    body = factories.small_payload(9050)
    raw = task_body([body])
    publish_raw(module_settings, raw, expires="2020-01-01T00:00:00+00:00")
    found = _await_letter(module_database, "the expired message", digest=_sha(raw))
    assert found.error_class == "MessageExpired" and "2020-01-01" in found.error_message


def _waiting_inserts(database: Database, *, at_least: int) -> bool:
    with database.connect(autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
            " AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO calls%%'",
            (database.name,),
        ).fetchone()
    return row is not None and int(row[0]) >= at_least


def test_a_message_that_kills_its_worker_is_dead_lettered_instead_of_run_again(
    module_settings: Settings, module_database: Database, worker: WorkerProcess
) -> None:
    """The call's task dies with its pool process each time (here: killed while it waits on a
    lock); after ``CALLSTORE_POISON_DELIVERIES`` (3) such deliveries it is dead-lettered, and
    the calls behind it go on."""
    poison = factories.small_payload(9060)
    with psycopg.connect(module_database.url) as lock:
        lock.execute("LOCK TABLE calls IN SHARE MODE")
        publish_calls(module_settings, [poison])
        for killed in range(1, 4):
            waiting = functools.partial(_waiting_inserts, module_database, at_least=killed)
            wait_until(waiting, timeout=30, what=f"delivery {killed} to reach the database")
            for pid in worker.pool_pids():
                subprocess.run(["kill", "-9", str(pid)], check=False)
        found = _await_letter(
            module_database, "the message, after three deaths", call_id=poison["call_id"]
        )
        lock.rollback()
    assert found.error_class == "PoisonMessage" and "3 times" in found.error_message
    behind = [factories.small_payload(9061)]
    publish_calls(module_settings, behind)
    wait_until(lambda: _stored(module_database, behind), timeout=60, what="the call behind it")
    assert worker.alive()
