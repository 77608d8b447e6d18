"""What an operator relies on, against one real system: a worker, Flower behind basic auth,
the metrics endpoint, the canary, structured logs and JSON-only messages.

One worker and one Flower serve the whole module (each test arranges and checks its own data);
the ``migration`` queue has no consumer here, so messages put there stay and can be counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from models.payload import QUEUE, TASK_NAME
from tests import factories
from tests.conftest import Database
from tests.helpers import (
    CELERY,
    PROJECT_ROOT,
    WorkerProcess,
    free_port,
    http_get,
    scalar,
    settings_env,
    start_worker,
    wait_until,
)
from worker.calls.finalize import dead_letter
from worker.client.journal import directory_of, encode_record
from worker.client.publisher import Publisher
from worker.client.spool import Spool
from worker.db import build_engine
from worker.dev import stack
from worker.errors import ConcurrencyConflict
from worker.jobs import JobName, exclusive_job
from worker.monitoring.canary import CANARY_TASK
from worker.settings import Settings

CALLSTORE = str(Path(sys.executable).with_name("callstore"))
USER, PASSWORD = "ops", "flower-Pa55"


@dataclass
class Service:
    """A long-running process of ours (Flower, the metrics endpoint) with its log."""

    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_answering(self, url: str) -> None:
        def answers() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.command[3:5]} exited:\n{self.log()[-3000:]}")
            with contextlib.suppress(OSError):
                return http_get(url)[0] in (200, 401)
            return False

        wait_until(answers, timeout=60, what=f"{url} to answer")


@dataclass
class System:
    settings: Settings
    database_url: str
    worker: WorkerProcess
    flower: Service
    flower_url: str
    redis: redis.Redis
    engine: Engine

    def flower_api(self, path: str) -> Any:
        status, body = http_get(self.flower_url + path, auth=(USER, PASSWORD))
        assert status == 200, (status, body)
        return json.loads(body)

    def scalar(self, query: str, *params: Any) -> Any:
        return scalar(self.database_url, query, *params)


@pytest.fixture(scope="module")
def system(
    module_database: Database,
    redis_url: str,
    stack_paths: stack.StackPaths,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[System]:
    tmp = tmp_path_factory.mktemp("operations")
    database_url = module_database.url
    client = redis.Redis(unix_socket_path=str(stack_paths.redis_socket))
    client.flushall()
    settings = factories.make_settings(
        database_url=database_url,
        broker_url=redis_url,
        spool_dir=tmp / "spool",
        log_format="json",
        flower_basic_auth=f"{USER}:{PASSWORD},second:user-Pa55",
        flower_db=tmp / "flower" / "flower.db",
        flower_url_prefix="/flower/",  # as behind a reverse proxy
    )
    port = free_port()
    flower = Service(
        [str(CELERY), "-A", "worker.celery_app", "flower", f"--port={port}", "--address=127.0.0.1"],
        settings_env(settings),
        tmp / "flower.log",
    )
    flower_url = f"http://127.0.0.1:{port}/flower"
    flower.start()
    worker = start_worker(settings, tmp, queues=("calls", "maintenance"), concurrency=2)
    engine = build_engine(settings)
    try:
        flower.wait_answering(flower_url + "/api/workers")
        yield System(settings, database_url, worker, flower, flower_url, client, engine)
    finally:
        engine.dispose()
        flower.stop()
        worker.stop()


def _send_calls(settings: Settings, seeds: range) -> list[Any]:
    recorders = [factories.recorder(seed, settings=settings) for seed in seeds]

    async def hand_off() -> list[bool]:
        return list(
            await asyncio.gather(*(r.finalize_and_write(status="ended") for r in recorders))
        )

    assert all(asyncio.run(hand_off()))
    return recorders


def _finalize_tasks(system: System) -> dict[str, dict[str, Any]]:
    tasks: dict[str, dict[str, Any]] = system.flower_api("/api/tasks?taskname=calls.finalize")
    return tasks


def test_flower_needs_credentials_and_lists_the_finalize_tasks_of_a_real_run(
    system: System,
) -> None:
    assert http_get(system.flower_url + "/api/tasks")[0] == 401
    assert http_get(system.flower_url + "/api/tasks", auth=(USER, "wrong"))[0] == 401
    assert http_get(system.flower_url + "/tasks")[0] == 401, "the UI is protected too"
    assert http_get(system.flower_url + "/tasks", auth=(USER, PASSWORD))[0] == 200

    recorders = _send_calls(system.settings, range(700, 703))
    shown = {f"<call {r.call_id} revision {r.revision}>" for r in recorders}

    def listed() -> set[str]:
        tasks = _finalize_tasks(system).values()
        return {t["args"] for t in tasks if t["state"] == "SUCCESS"} & shown

    wait_until(lambda: listed() == shown, timeout=60, what="Flower to list the three calls")
    task = next(t for t in _finalize_tasks(system).values() if t["args"] in shown)
    assert "'outcome': 'persisted'" in task["result"]
    assert task["worker"] and task["runtime"] is not None

    # Flower keeps its history across a restart (CALLSTORE_FLOWER_DB).
    system.flower.stop()
    system.flower.start()
    system.flower.wait_answering(system.flower_url + "/api/workers")
    assert listed() == shown
    status, _ = http_get(system.flower_url + "/api/tasks", auth=("second", "user-Pa55"))
    assert status == 200, "every configured user can sign in"


def test_a_long_task_shows_its_progress_counts_in_flower_while_it_runs(system: System) -> None:
    settings = system.settings
    bodies = [factories.small_payload(seed) for seed in range(710, 715)]
    ids = []
    for number, body in enumerate(bodies):
        kept = dead_letter(
            body,
            ConcurrencyConflict("deadlock detected"),
            task_id=f"t-{number}",
            engine=system.engine,
        )
        assert kept.dead_letter_id is not None
        ids.append(kept.dead_letter_id)
    publisher = Publisher(settings)
    with psycopg.connect(system.database_url) as holder:
        # The last row is locked: the replay does its first two batches and waits on the third.
        holder.execute("SELECT 1 FROM failed_payloads WHERE id = %s FOR UPDATE", (max(ids),))
        task_id = publisher.send("maintenance.replay_dead_letters", args=[2], queue="maintenance")

        def progress() -> dict[str, Any] | None:
            status, body = http_get(
                f"{system.flower_url}/api/task/info/{task_id}", auth=(USER, PASSWORD)
            )
            info: dict[str, Any] | None = json.loads(body) if status == 200 else None
            return info if info and info["state"] == "PROGRESS" and "4" in info["result"] else None

        running = wait_until(progress, timeout=60, what="Flower to show the replay's progress")
        assert running is not None
        assert running["result"] == repr({"total": 5, "replayed": 4, "refused": 0})
    publisher.close()

    def done() -> dict[str, Any] | None:
        info: dict[str, Any] = system.flower_api(f"/api/task/info/{task_id}")
        return info if info["state"] == "SUCCESS" else None

    finished = wait_until(done, timeout=60, what="the replay to finish")
    assert finished is not None
    assert "'replayed': 5" in finished["result"]
    wait_until(
        lambda: (
            system.scalar(
                "SELECT count(*) FROM calls WHERE call_id = ANY(%s)", [b["call_id"] for b in bodies]
            )
            == 5
        ),
        timeout=60,
        what="the replayed calls to be persisted",
    )


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_every_log_line_of_a_task_carries_its_ids_and_no_call_content(system: System) -> None:
    (recorder,) = _send_calls(system.settings, range(720, 721))
    call_id = str(recorder.call_id)
    payload = recorder.build_payload()
    wait_until(
        lambda: any(
            line.get("call_id") == call_id and "succeeded" in line["event"]
            for line in _json_lines(system.worker.log())
        ),
        timeout=60,
        what="the call's task to succeed",
    )
    lines = _json_lines(system.worker.log())
    task_ids = {line["task_id"] for line in lines if line.get("call_id") == call_id}
    assert len(task_ids) == 1
    (task_id,) = task_ids
    own = [line["event"] for line in lines if line.get("task_id") == task_id]
    assert "call finalized" in own, own
    assert any(event.endswith("received") for event in own), own
    assert any("succeeded" in event for event in own), own
    mentioning = [line for line in lines if task_id in json.dumps(line)]
    assert all(
        line.get("task_id") == task_id
        and line.get("call_id") == call_id
        and line.get("task") == TASK_NAME
        and line.get("level")
        and line.get("timestamp")
        for line in mentioning
    ), mentioning

    log = system.worker.log()
    assert recorder.from_number not in log and recorder.to_number not in log
    for message in payload["messages"]:
        assert message["content"] not in log, "transcript text must not reach the worker's log"


def test_a_pickled_message_is_refused_kept_unread_and_the_worker_survives(
    system: System, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (open, (str(marker), "w"))

    sender = Celery("not-callstore", broker=system.settings.broker_url.get_secret_value())
    sender.conf.update(accept_content=["pickle", "json"], task_serializer="pickle")
    try:
        sender.send_task(TASK_NAME, args=[Exploit()], queue=QUEUE, serializer="pickle")
    finally:
        sender.close()
    wait_until(
        lambda: (
            system.scalar(
                "SELECT count(*) FROM failed_payloads WHERE error_class = 'MessageUndecodable'"
                " AND error_message LIKE %s",
                "%application/x-python-serialize%",
            )
            == 1
        ),
        timeout=30,
        what="the worker to refuse the pickled message and keep its bytes",
    )
    (recorder,) = _send_calls(system.settings, range(730, 731))
    wait_until(
        lambda: (
            system.scalar("SELECT count(*) FROM calls WHERE call_id = %s", recorder.call_id) == 1
        ),
        timeout=60,
        what="the next call to be persisted by the same worker",
    )
    assert system.worker.process.poll() is None
    assert not marker.exists(), "the pickled payload must never be executed"
    assert system.redis.llen(QUEUE) == 0, "the refused message is not left to block the queue"


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = http_get(url)
    assert status == 200, text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_metrics_endpoint_shows_live_values_and_the_canary_round_trip(
    system: System, tmp_path: Path
) -> None:
    settings = system.settings
    # Arrange one of everything the metrics count.
    publisher = Publisher(settings)
    publisher.send("migration.run_batch", args=[], queue="migration")  # no consumer here
    publisher.close()
    dead_letter(
        factories.small_payload(740),
        ValueError("status: not allowed"),
        task_id="t-740",
        engine=system.engine,
    )
    # A spool of its own: the recorders of earlier tests in this process drain theirs.
    settings = settings.model_copy(update={"spool_dir": tmp_path / "metrics-spool"})
    Spool(settings.spool_dir).put(TASK_NAME, QUEUE, [{}], reason="test", key="spooled")
    orphan = (
        directory_of(settings.spool_dir) / f"{time.time_ns():020d}-{uuid.uuid4()}-0a1b2c3d.journal"
    )
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(encode_record({"t": "call", "f": {}}))  # no live process holds it
    with exclusive_job(settings, JobName.ROTATE_PARTITIONS) as job:
        assert job is not None
    with psycopg.connect(system.database_url, autocommit=True) as conn:
        # The Azure migration's checkpoints (its own revision makes the table; this is the
        # part the metric reads).
        conn.execute(
            "CREATE TABLE IF NOT EXISTS migration_checkpoints"
            " (source varchar(64) PRIMARY KEY, watermark timestamptz)"
        )
        conn.execute(
            "INSERT INTO migration_checkpoints (source, watermark) VALUES"
            " ('calls', now() - interval '1 hour'), ('recordings', now() - interval '1 minute')"
        )
    # The canary as beat sends it: published by the app (which stamps its send time), through
    # the calls queue, executed by the worker.
    call = subprocess.run(
        [str(CELERY), "-A", "worker.celery_app", "call", CANARY_TASK],
        cwd=PROJECT_ROOT,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        check=False,
    )
    assert call.returncode == 0, call.stderr
    wait_until(
        lambda: system.scalar("SELECT runs FROM job_runs WHERE job = 'canary'"),
        timeout=60,
        what="the canary to complete its round trip",
    )

    port = free_port()
    metrics = Service(
        [CALLSTORE, "metrics", "serve", "--port", str(port)],
        settings_env(settings),
        tmp_path / "metrics.log",
    )
    metrics.start()
    try:
        metrics.wait_answering(f"http://127.0.0.1:{port}/metrics")
        values = _scrape(f"http://127.0.0.1:{port}/metrics")
    finally:
        metrics.stop()

    def value(name: str, **labels: str) -> float:
        return values[(name, tuple(sorted(labels.items())))]

    assert value("callstore_up", component="redis") == 1
    assert value("callstore_up", component="postgres") == 1
    assert value("callstore_queue_depth", queue="migration") == 1
    assert value("callstore_queue_depth", queue="calls") == 0
    assert value("callstore_dead_letter_payloads") >= 1
    assert value("callstore_spool_files") == 1
    assert value("callstore_orphaned_journals") == 1
    assert 0 <= value("callstore_spool_oldest_age_seconds") < 120
    assert value("callstore_partition_horizon_months") == 3  # the template premakes 3 months
    assert 0 <= value("callstore_beat_job_last_success_age_seconds", job="rotate_partitions") < 120
    canary_age = value("callstore_canary_roundtrip_age_seconds")
    assert 0 <= canary_age < 120
    assert value("callstore_beat_job_last_success_age_seconds", job="canary") <= canary_age
    assert 3600 <= value("callstore_migration_lag_seconds") < 3720, "the source furthest behind"
    sent_at = system.scalar("SELECT last_started_at FROM job_runs WHERE job = 'canary'")
    finished_at = system.scalar("SELECT last_finished_at FROM job_runs WHERE job = 'canary'")
    assert sent_at < finished_at, "the round trip starts when the canary is published"
    assert datetime.now(UTC) - sent_at < timedelta(minutes=2)
