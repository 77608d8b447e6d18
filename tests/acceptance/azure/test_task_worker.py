"""``migration.run_batch`` in a real ``celery worker`` process: it migrates the cases and reports
its progress (the in-process task tests are in ``tests/integration/azure/test_task.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import redis

from tests.helpers import start_worker, wait_until
from worker.azure.client import AzureStorage
from worker.client.publisher import get_publisher
from worker.dev import legacy_data as generate
from worker.settings import Settings


def _job(conn: psycopg.Connection[Any]) -> tuple[str, dict[str, Any]] | None:
    row = conn.execute(
        "SELECT last_status, last_details FROM job_runs WHERE job = 'migration'"
    ).fetchone()
    return None if row is None or row[0] == "running" else (row[0], row[1])


def test_the_task_migrates_in_a_worker_and_reports_progress(
    azure_settings: Settings,
    legacy: AzureStorage,
    conn: psycopg.Connection[Any],
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    generate.write_cases(legacy)
    worker = start_worker(azure_settings, tmp_path, name="migration", queues=("migration",))
    try:
        publisher = get_publisher(azure_settings)
        task_id = publisher.send("migration.run_batch", args=[], queue="migration")
        finished = wait_until(lambda: _job(conn), timeout=60, what="the migration task to finish")
        assert finished is not None
        status, details = finished
        assert status == "succeeded", worker.log()[-3000:]
        assert details["caught_up"] is True
        assert details["migrated"] == 53
        calls = conn.execute("SELECT count(*) FROM calls WHERE source = 'azure'").fetchone()
        assert calls == (11,)
        # The custom state Flower shows while it runs (results are off, so it stays).
        meta = json.loads(redis_client.get(f"celery-task-meta-{task_id}") or b"{}")
        assert meta["status"] == "PROGRESS"
        assert meta["result"]["migrated"] == 53
        assert meta["result"]["caught_up"] is True
    finally:
        worker.stop()
