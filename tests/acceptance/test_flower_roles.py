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
from tests.conftest import TEMPLATE
from tests.helpers import WorkerProcess, free_port, http_request, start_worker, wait_until
from worker.client.publisher import Publisher
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

    def scalar(self, query: str, *params: Any) -> Any:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            row = conn.execute(query, params).fetchone()
            return None if row is None else row[0]


@pytest.fixture(scope="module")
def system(
    pg_admin_url: str,
    template_database: str,
    redis_url: str,
    stack_paths: stack.StackPaths,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Flower]:
    tmp = tmp_path_factory.mktemp("flower-roles")
    name = f"test_roles_{uuid.uuid4().hex[:8]}"
    database_url = stack.create_database(pg_admin_url, name, template=TEMPLATE)
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
        stack.drop_database(pg_admin_url, name)


def _consumed_queues(system: Flower) -> set[str]:
    return {queue["name"] for queue in system.worker_info().get("active_queues", [])}


def _consume_calls(system: Flower) -> None:
    """The operator adds the ``calls`` consumer, as after a maintenance window."""
    if QUEUE in _consumed_queues(system):
        return
    status, body = system.request(
        f"/api/worker/queue/add-consumer/{system.worker_name}?queue={QUEUE}",
        method="POST",
        user=OPERATOR,
    )
    assert status == 200, body
    wait_until(lambda: QUEUE in _consumed_queues(system), timeout=30, what="the calls consumer")


def _send(system: Flower, payload: dict[str, Any]) -> str:
    publisher = Publisher(system.settings)
    try:
        return publisher.send(TASK_NAME, args=[payload], queue=QUEUE)
    finally:
        publisher.close()


def _stored(system: Flower, payload: dict[str, Any]) -> int:
    count: int = system.scalar(
        "SELECT count(*) FROM calls WHERE call_id = %s", uuid.UUID(payload["call_id"])
    )
    return count


def test_a_viewer_reads_tasks_and_workers_and_sees_no_controls(system: Flower) -> None:
    payload = factories.small_payload(1101)
    _consume_calls(system)
    task_id = _send(system, payload)
    wait_until(lambda: _stored(system, payload) == 1, timeout=60, what="the call to be stored")

    def finished() -> dict[str, Any] | None:
        info: dict[str, Any] = system.read(f"/api/task/info/{task_id}")
        return info if info.get("state") == "SUCCESS" else None

    info = wait_until(finished, timeout=60, what="Flower to see the task succeed")
    assert info is not None and info["name"] == TASK_NAME
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
