"""A call in progress is checkpointed to the broker as ``in_progress`` revisions, each stored like
any revision and replaced by the next; the final payload replaces them all."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import psycopg
import redis
from sqlalchemy import Engine

from tests import factories
from tests.helpers import wait_until
from worker.calls.finalize import finalize_call
from worker.settings import Settings


def _queued_calls(client: redis.Redis) -> list[dict[str, Any]]:
    """The payloads waiting in the ``calls`` queue, oldest first."""
    payloads = []
    for raw in reversed(client.lrange("calls", 0, -1)):
        message = json.loads(raw)
        if message["headers"]["task"] != "calls.finalize":
            continue
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        payloads.append(args[0])
    return payloads


def test_checkpoints_are_stored_and_replaced_by_the_final_payload(
    settings: Settings,
    redis_client: redis.Redis,
    engine: Engine,
    conn: psycopg.Connection[Any],
) -> None:
    quick = settings.model_copy(update={"checkpoint_seconds": 0.2, "journal_flush_seconds": 0.05})
    rec = factories.recorder(61, settings=quick, journal=True)
    deadline = time.monotonic() + 20
    turn = 0
    while not any(p["status"] == "in_progress" for p in _queued_calls(redis_client)):
        assert time.monotonic() < deadline, "no checkpoint was handed off"
        turn += 1
        rec.record_message("user", f"still talking {turn}", turn_number=turn)
        time.sleep(0.05)
    (checkpoint,) = [p for p in _queued_calls(redis_client) if p["status"] == "in_progress"][:1]
    assert checkpoint["ended_at"] is None and rec.checkpoints >= 1

    finalize_call(checkpoint, settings=settings, task_id="cp", engine=engine)
    row = conn.execute(
        "SELECT status, revision, total_messages FROM calls WHERE call_id = %s",
        (checkpoint["call_id"],),
    ).fetchone()
    assert row == ("in_progress", checkpoint["revision"], len(checkpoint["messages"]))

    assert asyncio.run(rec.finalize_and_write(status="ended"))
    final = wait_until(
        lambda: [p for p in _queued_calls(redis_client) if p["status"] == "ended"],
        timeout=10,
        what="the final payload",
    )[0]
    assert final["revision"] > max(p["revision"] for p in _queued_calls(redis_client)[:-1])
    finalize_call(final, settings=settings, task_id="final", engine=engine)
    finalize_call(checkpoint, settings=settings, task_id="late", engine=engine)  # arrives late
    row = conn.execute(
        "SELECT status, revision, total_messages FROM calls WHERE call_id = %s",
        (final["call_id"],),
    ).fetchone()
    assert row == ("ended", final["revision"], len(final["messages"]))
