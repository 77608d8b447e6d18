"""``migration.run_batch`` in a real worker, and its retry when Azure cannot be reached."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from tests.helpers import start_worker, wait_until
from worker.azure.client import AzureStorage
from worker.client.publisher import get_publisher
from worker.dev import azurite
from worker.dev import legacy_data as generate
from worker.errors import AzureUnavailable
from worker.settings import Settings, get_settings


def _job(conn: psycopg.Connection[Any]) -> tuple[str, dict[str, Any]] | None:
    row = conn.execute(
        "SELECT last_status, last_details FROM job_runs WHERE job = 'migration'"
    ).fetchone()
    return None if row is None or row[0] == "running" else (row[0], row[1])


@pytest.mark.integration
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
        assert details["migrated"] == 49
        calls = conn.execute("SELECT count(*) FROM calls WHERE source = 'azure'").fetchone()
        assert calls == (9,)
        # The custom state Flower shows while it runs (results are off, so it stays).
        meta = json.loads(redis_client.get(f"celery-task-meta-{task_id}") or b"{}")
        assert meta["status"] == "PROGRESS"
        assert meta["result"]["migrated"] == 49
        assert meta["result"]["caught_up"] is True
    finally:
        worker.stop()


def test_unreachable_azure_is_retried_by_celery_then_fails_clearly(
    configured: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()
    monkeypatch.setenv("CALLSTORE_AZURE_CONNECTION_STRING", azurite.connection_string(port, port))
    monkeypatch.setenv("CALLSTORE_AZURE_RETRY_TOTAL", "0")
    get_settings.cache_clear()

    import tasks.migration as shell

    attempts: list[int] = []
    real = shell.run_batches  # type: ignore[attr-defined]

    def counted(*args: Any, **kwargs: Any) -> Any:
        attempts.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(shell, "run_batches", counted)
    outcome = shell.run_batch.apply()
    assert len(attempts) == shell.MAX_RETRIES + 1
    assert outcome.state == "FAILURE"
    assert isinstance(outcome.result, AzureUnavailable)
    assert "cannot reach Azure Storage" in str(outcome.result)
