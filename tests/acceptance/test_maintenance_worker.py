"""On a real worker: finalize tasks keep succeeding while the maintenance tasks rotate
partitions and apply retention to two-year-old history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from sqlalchemy import Engine

from models.base import PARTITIONED_TABLES
from models.payload import QUEUE, TASK_NAME, CallPayload
from tests import factories
from tests.helpers import assert_whole_or_gone, orphan_rows, start_worker, store_call, wait_until
from worker.calls.persist import build_rows
from worker.client.publisher import Publisher
from worker.jobs import JobName
from worker.maintenance.partitions import ARCHIVE_SCHEMA
from worker.settings import Settings


def _expected_rows(body: dict[str, Any]) -> tuple[UUID, dict[str, int]]:
    rows = build_rows(CallPayload.model_validate(body))
    return rows.call["call_id"], rows.counts()


def _job_status(conn: psycopg.Connection[Any]) -> dict[str, str]:
    return dict(conn.execute("SELECT job, last_status FROM job_runs").fetchall())


def test_finalizes_succeed_on_a_worker_while_maintenance_runs(
    settings: Settings, engine: Engine, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    old_start = now - timedelta(days=730)
    old = dict(store_call(engine, seed, old_start + timedelta(hours=seed)) for seed in range(120))
    fresh_bodies = [
        factories.small_payload(500 + i, start=now - timedelta(minutes=30 + i)) for i in range(30)
    ]
    fresh = dict(_expected_rows(body) for body in fresh_bodies)

    worker = start_worker(settings, tmp_path, queues=("calls", "maintenance"), concurrency=2)
    publisher = Publisher(settings)
    try:
        publisher.send("maintenance.enforce_retention", args=[], queue="maintenance")
        for index, body in enumerate(fresh_bodies):
            publisher.send(TASK_NAME, args=[body], queue=QUEUE)
            if index == 10:
                publisher.send("maintenance.rotate_partitions", args=[], queue="maintenance")

        def all_done() -> bool:
            row = conn.execute(
                "SELECT count(*) FROM calls WHERE call_id = ANY(%s)", (list(fresh),)
            ).fetchone()
            jobs = _job_status(conn)
            return bool(
                row
                and row[0] == len(fresh)
                and jobs.get(JobName.ENFORCE_RETENTION) == "succeeded"
                and jobs.get(JobName.ROTATE_PARTITIONS) == "succeeded"
            )

        wait_until(all_done, timeout=90, what="30 finalized calls and both maintenance jobs")
    finally:
        publisher.close()
        worker.stop()

    assert "Traceback" not in worker.log()
    assert_whole_or_gone(conn, {**old, **fresh}, set(fresh))
    assert orphan_rows(conn) == {}
    archived = conn.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = %s", (ARCHIVE_SCHEMA,)
    ).fetchone()
    assert archived is not None
    assert archived[0] >= len(PARTITIONED_TABLES)
    row = conn.execute("SELECT count(*) FROM failed_payloads").fetchone()
    assert row == (0,)
