"""Flower's two kinds of user against a real Flower and a real worker: viewers read everything
and change nothing; operators control workers and tasks; a revoked ``calls.finalize`` is never
dropped, it is kept as a dead letter.

One worker and one Flower serve the module. The worker consumes only ``maintenance`` until a
test adds the ``calls`` consumer through Flower, so a call can wait in Redis, unseen by any
worker, while an operator revokes it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import redis

from models.payload import QUEUE, TASK_NAME
from tests import factories
from tests.conftest import Database
from tests.helpers import (
    WorkerProcess,
    free_port,
    http_request,
    scalar,
    start_worker,
    wait_until,
)
from worker.client.publisher import Publisher
from worker.client.settlement import SETTLED_PREFIX, UNACKED_HASH
from worker.dev import processes, stack
from worker.settings import Settings

OPERATOR = ("ops", "operator-Pa55")
VIEWER = ("watcher", "viewer-Pa55")


@dataclass
class Flower:
    settings: Settings
    database_url: str
    url: str
    worker: WorkerProcess
    flower: processes.ManagedProcess
    redis: redis.Redis
    worker_name: str

    def request(
        self, path: str, *, method: str = "GET", user: tuple[str, str], body: bytes = b""
    ) -> tuple[int, str]:
        return http_request(self.url + path, method=method, auth=user, body=body)

    def read(self, path: str, *, user: tuple[str, str] = VIEWER) -> Any:
        status, body = self.request(path, user=user)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def worker_info(self) -> dict[str, Any]:
        info: dict[str, dict[str, Any]] = self.read(
            f"/api/workers?refresh=1&workername={self.worker_name}"
        )
        return info[self.worker_name]


@pytest.fixture(scope="module")
def system(
    module_database: Database,
    redis_url: str,
    stack_paths: stack.StackPaths,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Flower]:
    tmp = tmp_path_factory.mktemp("flower-roles")
    database_url = module_database.url
    client = redis.Redis(unix_socket_path=str(stack_paths.redis_socket))
    client.flushall()
    settings = factories.make_settings(
        database_url=database_url,
        broker_url=redis_url,
        spool_dir=tmp / "spool",
        flower_basic_auth=":".join(OPERATOR),
        flower_viewers=":".join(VIEWER),
        flower_db=tmp / "flower.db",
    )
    port = free_port()
    flower = processes.start_flower(
        "flower", env=processes.settings_env(settings), log_dir=tmp, port=port
    )
    url = f"http://127.0.0.1:{port}"
    worker = start_worker(settings, tmp, queues=("maintenance",))
    try:

        def worker_listed() -> str | None:
            if not flower.alive():
                raise AssertionError(f"Flower exited:\n{flower.log()[-3000:]}")
            try:
                status, body = http_request(url + "/api/workers?refresh=1", auth=VIEWER)
            except OSError:
                return None
            names = list(json.loads(body)) if status == 200 else []
            return names[0] if names else None

        worker_name = wait_until(worker_listed, timeout=60, what="Flower to list the worker")
        assert worker_name is not None
        yield Flower(settings, database_url, url, worker, flower, client, worker_name)
    finally:
        flower.stop()
        worker.stop()


def _consumed_queues(system: Flower) -> set[str]:
    return {queue["name"] for queue in system.worker_info().get("active_queues", [])}


def _consume_calls(system: Flower, consume: bool = True) -> None:
    """The operator adds (or cancels) the ``calls`` consumer, as around a maintenance window."""
    if (QUEUE in _consumed_queues(system)) is consume:
        return
    action = "add-consumer" if consume else "cancel-consumer"
    status, body = system.request(
        f"/api/worker/queue/{action}/{system.worker_name}?queue={QUEUE}",
        method="POST",
        user=OPERATOR,
    )
    assert status == 200, body
    wait_until(
        lambda: (QUEUE in _consumed_queues(system)) is consume,
        timeout=30,
        what=f"the calls consumer to be {'added' if consume else 'cancelled'}",
    )


def _send(system: Flower, payload: dict[str, Any]) -> str:
    publisher = Publisher(system.settings)
    try:
        return publisher.send(TASK_NAME, args=[payload], queue=QUEUE)
    finally:
        publisher.close()


def _stored(system: Flower, payload: dict[str, Any]) -> int:
    count: int = scalar(
        system.database_url,
        "SELECT count(*) FROM calls WHERE call_id = %s",
        uuid.UUID(payload["call_id"]),
    )
    return count


def _state(system: Flower, task_id: str) -> str | None:
    """The task's state as Flower saw it from the events; None before its first event."""
    status, body = system.request(f"/api/task/info/{task_id}", user=VIEWER)
    return json.loads(body).get("state") if status == 200 else None


def _dead_letter(system: Flower, payload: dict[str, Any]) -> tuple[str, str, bytes] | None:
    with psycopg.connect(system.database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT error_class, error_message, payload FROM failed_payloads WHERE call_id = %s",
            (uuid.UUID(payload["call_id"]),),
        ).fetchone()
    return None if row is None else (row[0], row[1], bytes(row[2]))


def _revoke_while_waiting(system: Flower, payload: dict[str, Any]) -> str:
    """Publish ``payload`` while no worker consumes ``calls``, revoke it as an operator, wait
    until the worker holds the revoke, then let the worker take the message."""
    _consume_calls(system, consume=False)
    task_id = _send(system, payload)
    # A read the worker had started before the cancel puts what it took back (kombu).
    wait_until(lambda: system.redis.llen(QUEUE) == 1, timeout=30, what="the call to wait")
    status, body = system.request(f"/api/task/revoke/{task_id}", method="POST", user=OPERATOR)
    assert status == 200, body
    wait_until(
        lambda: task_id in system.worker_info().get("revoked", []),
        timeout=30,
        what="the worker to hold the revoke",
    )
    _consume_calls(system)
    return task_id


def test_a_viewer_reads_tasks_and_workers_and_sees_no_controls(system: Flower) -> None:
    payload = factories.small_payload(1101)
    _consume_calls(system)
    task_id = _send(system, payload)
    wait_until(lambda: _stored(system, payload) == 1, timeout=60, what="the call to be stored")

    wait_until(
        lambda: _state(system, task_id) == "SUCCESS", timeout=60, what="Flower to see it succeed"
    )
    assert system.read(f"/api/task/info/{task_id}")["name"] == TASK_NAME
    assert task_id in system.read(f"/api/tasks?taskname={TASK_NAME}")
    assert system.read("/api/queues/length")["active_queues"] is not None
    assert system.read("/api/task/types")["task-types"]
    status, table = system.request(
        "/tasks/datatable",
        method="POST",
        user=VIEWER,
        body=b"draw=1&start=0&length=10&order[0][column]=0&columns[0][data]=name",
    )
    assert status == 200 and task_id in table, "the UI's task list is a read sent as POST"

    for user, controls in ((VIEWER, False), (OPERATOR, True)):
        status, page = system.request(f"/worker/{system.worker_name}", user=user)
        assert status == 200, page
        assert ('id="worker-shutdown"' in page) is controls, user[0]


CONTROLS = [
    "/api/worker/shutdown/{worker}",
    "/api/worker/pool/restart/{worker}",
    "/api/worker/pool/grow/{worker}?n=1",
    "/api/worker/pool/shrink/{worker}?n=1",
    "/api/worker/pool/autoscale/{worker}?min=1&max=2",
    "/api/worker/queue/add-consumer/{worker}?queue=migration",
    "/api/worker/queue/cancel-consumer/{worker}?queue=maintenance",
    "/api/task/revoke/{task}?terminate=true",
    "/api/task/abort/{task}",
    "/api/task/timeout/calls.finalize?soft=1&hard=2&workername={worker}",
    "/api/task/rate-limit/calls.finalize?ratelimit=1/m&workername={worker}",
    "/api/task/apply/calls.finalize",
    "/api/task/async-apply/calls.finalize",
    "/api/task/send-task/calls.finalize",
    "/api/no-such-endpoint",
]


def test_a_viewer_is_refused_every_control_and_every_write(system: Flower) -> None:
    payload = factories.small_payload(1102)
    body = json.dumps({"args": [payload]}).encode()
    task = str(uuid.uuid4())
    for path in CONTROLS:
        url = path.format(worker=system.worker_name, task=task)
        status, answer = system.request(url, method="POST", user=VIEWER, body=body)
        assert status == 403, (url, status, answer)
        assert "viewer" in answer, (url, answer)
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        status, answer = system.request("/api/tasks", method=method, user=VIEWER, body=body)
        assert status == 403, (method, status, answer)

    # Nothing happened: the worker runs with its queues and pool, no call was sent or stored.
    assert system.worker.alive()
    info = system.worker_info()
    assert _consumed_queues(system) >= {"maintenance"} and "migration" not in _consumed_queues(
        system
    )
    assert info["stats"]["pool"]["max-concurrency"] == 1
    assert system.redis.llen(QUEUE) == 0
    assert _stored(system, payload) == 0


def test_an_operator_revoke_sends_the_waiting_call_to_the_dead_letters(system: Flower) -> None:
    payload = factories.small_payload(1103)
    task_id = _revoke_while_waiting(system, payload)

    kept = wait_until(
        lambda: _dead_letter(system, payload), timeout=60, what="the revoked call's dead letter"
    )
    assert kept is not None
    error_class, message, body = kept
    assert error_class == "MessageRevoked"
    assert "revoked" in message and task_id in message
    assert json.loads(body) == payload, "the dead letter keeps the call's JSON, for replay"
    wait_until(
        lambda: system.redis.hlen(UNACKED_HASH) == 0 and system.redis.llen(QUEUE) == 0,
        timeout=30,
        what="the message to be acknowledged",
    )
    assert _stored(system, payload) == 0
    assert (
        system.redis.get(f"{SETTLED_PREFIX}{payload['call_id']}")
        == str(payload["revision"]).encode()
    ), "settled: the runtime's outbox does not publish it again"
    assert system.worker.alive()


def test_a_revoked_call_that_cannot_be_dead_lettered_is_stored_instead(system: Flower) -> None:
    payload = factories.small_payload(1104)
    with psycopg.connect(system.database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION refuse_dead_letters() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'dead letters refused for this test'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON failed_payloads"
            " FOR EACH ROW EXECUTE FUNCTION refuse_dead_letters()"
        )
    try:
        _revoke_while_waiting(system, payload)
        wait_until(lambda: _stored(system, payload) == 1, timeout=60, what="the call to be stored")
    finally:
        with psycopg.connect(system.database_url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER refuse ON failed_payloads")
            conn.execute("DROP FUNCTION refuse_dead_letters()")
    assert _dead_letter(system, payload) is None
    assert "could not be dead-lettered" in system.worker.log()


def test_an_operator_terminating_a_running_finalize_keeps_its_call(system: Flower) -> None:
    payload = factories.small_payload(1105)
    _consume_calls(system)
    with psycopg.connect(system.database_url) as holder:
        # The finalize blocks on its first write to calls, well inside its 10 s lock timeout.
        holder.execute("LOCK TABLE calls IN ACCESS EXCLUSIVE MODE")
        task_id = _send(system, payload)
        wait_until(
            lambda: _state(system, task_id) == "STARTED", timeout=30, what="the finalize to run"
        )
        status, body = system.request(
            f"/api/task/revoke/{task_id}?terminate=true", method="POST", user=OPERATOR
        )
        assert status == 200, body
        kept = wait_until(
            lambda: _dead_letter(system, payload), timeout=30, what="the terminated call's letter"
        )
    assert kept is not None
    assert kept[0] == "MessageRevoked" and "terminated" in kept[1], kept[:2]
    assert json.loads(kept[2]) == payload
    wait_until(
        lambda: system.redis.hlen(UNACKED_HASH) == 0, timeout=30, what="the message to be acked"
    )
    assert _stored(system, payload) == 0, "its transaction died with its process"
