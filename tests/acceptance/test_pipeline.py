"""The finalize pipeline end to end, with real worker processes, and the faults it survives.

Every test ends on the same invariant: each finalized call is in ``calls`` exactly once with
all of its rows, or in ``failed_payloads`` — never lost, never doubled.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from models.payload import QUEUE
from tests import factories
from tests.conftest import Database
from tests.helpers import WorkerProcess, publish_calls, settings_env, start_worker, wait_until
from worker.client.settlement import UNACKED_HASH
from worker.client.spool import Spool
from worker.dev import stack
from worker.settings import Settings


def _scalar(database: Database, sql: str, *params: Any) -> Any:
    with database.connect(autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()
        return None if row is None else row[0]


def assert_each_call_once(database: Database, bodies: list[dict[str, Any]]) -> None:
    """The invariant: one ``calls`` row per call, with exactly its own child rows."""
    with database.connect(autocommit=True) as conn:
        for body in bodies:
            cid = body["call_id"]
            counts = conn.execute(
                """SELECT (SELECT count(*) FROM calls WHERE call_id = %(c)s),
                          (SELECT count(*) FROM call_messages WHERE call_id = %(c)s),
                          (SELECT count(*) FROM call_metrics WHERE call_id = %(c)s),
                          (SELECT count(*) FROM call_transcripts WHERE call_id = %(c)s)""",
                {"c": cid},
            ).fetchone()
            messages = len(body["messages"])
            assert counts == (1, messages, len(body["metrics"]), min(1, messages)), cid
        assert conn.execute("SELECT count(*) FROM failed_payloads").fetchone() == (0,)


#: A worker that pauses between taking a call and recording it (the app module is not imported
#: here: it loads the workers' app, which needs a worker's settings), and what it prints then.
PAUSED_APP = "tests.acceptance.paused_intake_app"
PAUSED = "paused between taking and recording"


def _persisted(database: Database) -> int:
    return int(_scalar(database, "SELECT count(*) FROM calls"))


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = start_worker(settings, tmp_path)
    yield process
    process.stop()


def test_a_recorded_call_reaches_postgres_through_a_real_worker(
    settings: Settings, database: Database, worker: WorkerProcess
) -> None:
    rec = factories.recorder(21, settings=settings)
    assert asyncio.run(rec.finalize_and_write(status="ended")) is True
    wait_until(lambda: _persisted(database) == 1, timeout=30, what="the call to be persisted")
    body = rec.build_payload()  # the same content (a later revision only differs by number)
    assert _scalar(database, "SELECT total_messages FROM calls") == len(body["messages"])
    assert "Task calls.finalize" in worker.log()
    assert rec.to_number not in worker.log(), "phone numbers must not reach the worker's log"


def test_duplicate_deliveries_leave_one_copy(
    settings: Settings, database: Database, worker: WorkerProcess
) -> None:
    bodies = [factories.small_payload(seed) for seed in range(1, 6)]
    publish_calls(settings, bodies + bodies + bodies[:2])
    wait_until(
        lambda: "succeeded" in worker.log() and worker.log().count("succeeded") >= 12,
        timeout=60,
        what="all twelve deliveries to be processed",
    )
    assert_each_call_once(database, bodies)


def test_sigkill_of_a_worker_during_a_burst_loses_and_doubles_nothing(
    settings: Settings, database: Database, tmp_path: Path
) -> None:
    fast = settings.model_copy(update={"broker_visibility_timeout": 3})
    bodies = [factories.payload(seed) for seed in range(100, 150)]
    first = start_worker(fast, tmp_path, name="doomed")
    try:
        publish_calls(fast, bodies)
        wait_until(lambda: _persisted(database) >= 1, timeout=60, what="a first call persisted")
        first.kill()
    finally:
        first.stop()
    assert _persisted(database) < len(bodies)
    second = start_worker(fast, tmp_path, name="survivor")
    try:
        wait_until(
            lambda: _persisted(database) == len(bodies), timeout=90, what="every call persisted"
        )
    finally:
        second.stop()
    assert_each_call_once(database, bodies)


def test_a_worker_killed_between_taking_a_call_and_recording_it_loses_nothing(
    settings: Settings, database: Database, tmp_path: Path, stack_paths: stack.StackPaths
) -> None:
    """The window of Celery's Redis transport (celery/celery#7950): the worker has taken the
    call off its queue and not yet recorded it as unacknowledged. A producer without an outbox
    (here a plain ``Publisher``) has nothing to send it again: the broker itself must."""
    fast = settings.model_copy(update={"broker_visibility_timeout": 3})
    body = factories.payload(300)
    broker = redis.Redis(unix_socket_path=str(stack_paths.redis_socket))
    doomed = start_worker(fast, tmp_path, name="paused", app=PAUSED_APP)
    try:
        publish_calls(fast, [body])
        wait_until(
            lambda: PAUSED in doomed.log(),
            timeout=60,
            what="the worker to hold the call it has not recorded",
        )
        assert broker.llen(QUEUE) == 0, "the call was taken off its queue"
        assert broker.hlen(UNACKED_HASH) == 0, "and not recorded as unacknowledged"
        doomed.kill()
    finally:
        doomed.stop()
    survivor = start_worker(fast, tmp_path, name="survivor")
    try:
        wait_until(lambda: _persisted(database) == 1, timeout=60, what="the call delivered again")
    finally:
        survivor.stop()
    assert_each_call_once(database, [body])


def test_a_killed_pool_process_hands_its_call_back_at_once(
    settings: Settings, database: Database, worker: WorkerProcess
) -> None:
    bodies = [factories.payload(seed) for seed in range(200, 215)]
    publish_calls(settings, bodies)
    wait_until(lambda: _persisted(database) >= 2, timeout=60, what="a few calls persisted")
    for pid in worker.pool_pids():
        subprocess.run(["kill", "-9", str(pid)], check=False)
    wait_until(lambda: _persisted(database) == len(bodies), timeout=90, what="every call persisted")
    assert_each_call_once(database, bodies)


def test_postgres_stopped_during_a_burst_delays_but_loses_nothing(
    settings: Settings, database: Database, worker: WorkerProcess, stack_paths: stack.StackPaths
) -> None:
    bodies = [factories.small_payload(seed) for seed in range(300, 330)]
    socket_dir = stack.postgres_socket_dir(stack_paths)
    publish_calls(settings, bodies[:5])
    wait_until(lambda: _persisted(database) == 5, timeout=60, what="the first calls persisted")
    stack.stop_postgres(stack_paths, mode="fast")
    try:
        publish_calls(settings, bodies[5:])
        wait_until(
            lambda: "will be retried" in worker.log(), timeout=60, what="the worker to retry"
        )
    finally:
        stack.resume_postgres(stack_paths, socket_dir=socket_dir)
    wait_until(
        lambda: _persisted(database) == len(bodies), timeout=120, what="every call persisted"
    )
    assert_each_call_once(database, bodies)


def test_an_unreachable_broker_spools_and_a_flush_delivers_once(
    settings: Settings, database: Database, worker: WorkerProcess, tmp_path: Path
) -> None:
    down = settings.model_copy(
        update={"broker_url": settings.broker_url.__class__(f"redis+socket://{tmp_path}/gone.sock")}
    )
    recorders = [factories.recorder(seed, settings=down) for seed in range(400, 404)]
    for rec in recorders:
        assert asyncio.run(rec.finalize_and_write(status="ended")) is True
    assert Spool(settings.spool_dir).stats().files == 4
    assert _persisted(database) == 0

    flush = subprocess.run(
        [str(Path(sys.executable).with_name("callstore")), "spool", "flush"],
        env=settings_env(settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert flush.returncode == 0, flush.stderr
    assert "re-enqueued 4" in flush.stdout
    assert Spool(settings.spool_dir).is_empty()
    wait_until(lambda: _persisted(database) == 4, timeout=60, what="the spooled calls persisted")
    # A second flush has nothing left to send: the calls stay persisted once.
    assert_each_call_once(database, [rec.build_payload() for rec in recorders])


def test_the_recorder_drains_its_spool_once_the_broker_answers(
    settings: Settings, database: Database, worker: WorkerProcess, tmp_path: Path
) -> None:
    down = settings.model_copy(
        update={"broker_url": settings.broker_url.__class__(f"redis+socket://{tmp_path}/gone.sock")}
    )
    spooled = factories.recorder(500, settings=down)
    assert asyncio.run(spooled.finalize_and_write(status="ended")) is True
    live = factories.recorder(501, settings=settings)
    assert asyncio.run(live.finalize_and_write(status="ended")) is True
    wait_until(lambda: Spool(settings.spool_dir).is_empty(), timeout=30, what="the spool to drain")
    wait_until(lambda: _persisted(database) == 2, timeout=60, what="both calls persisted")


def test_a_call_the_broker_loses_is_published_again_from_the_outbox(
    settings: Settings, database: Database, tmp_path: Path, redis_client: redis.Redis
) -> None:
    """A worker killed between taking a message off Redis and recording it as unacknowledged
    loses that message (celery/celery#7950); the runtime's outbox publishes the call again."""
    quick = settings.model_copy(update={"outbox_redeliver_seconds": 1.0})
    rec = factories.recorder(600, settings=quick)
    assert asyncio.run(rec.finalize_and_write(status="ended")) is True
    assert redis_client.rpop("calls") is not None  # the message vanishes, as in that window
    assert Spool(quick.spool_dir).stats().unsettled == 1
    worker = start_worker(quick, tmp_path)
    try:
        wait_until(lambda: _persisted(database) == 1, timeout=60, what="the lost call persisted")
        wait_until(
            lambda: Spool(quick.spool_dir).stats().unsettled == 0,
            timeout=30,
            what="the outbox to forget the settled call",
        )
    finally:
        worker.stop()
