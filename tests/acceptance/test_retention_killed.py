"""A ``callstore retention run`` process SIGKILLed inside its batched delete: the batches it
committed stay done, the one it was in rolls back, every call is whole or gone, and the next
run finishes the work (the in-process retention tests are in
``tests/integration/test_retention.py``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from sqlalchemy import Engine

from models.base import PARTITIONED_TABLES
from tests.catalog import archive_tables
from tests.conftest import Database
from tests.helpers import (
    assert_whole_or_gone,
    attached_months,
    drop_all_partitions,
    settings_env,
    store_call,
    wait_until,
)
from worker.maintenance.retention import enforce_retention
from worker.maintenance.retention_rules import RetentionPolicy
from worker.settings import Settings

NOW = datetime(2027, 3, 15, 12, tzinfo=UTC)  # cutoff 2026-03-15 12:00, months < 2026-03 expire
POLICY = RetentionPolicy(retention_days=365, grace_days=7)


@pytest.fixture
def many_expired_calls(conn: psycopg.Connection[Any], engine: Engine) -> dict[UUID, dict[str, int]]:
    drop_all_partitions(conn)
    start = datetime(2026, 1, 5, tzinfo=UTC)
    return dict(store_call(engine, seed, start + timedelta(hours=seed)) for seed in range(60))


def _waiting_maintenance_backends(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = 'callstore-maintenance' AND wait_event_type = 'Lock'"
    ).fetchone()
    return int(row[0]) if row else 0


def _maintenance_backends(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'callstore-maintenance'"
    ).fetchone()
    return int(row[0]) if row else 0


def test_a_run_killed_during_the_batched_delete_finishes_on_the_next_run(
    conn: psycopg.Connection[Any],
    database: Database,
    settings: Settings,
    many_expired_calls: dict[UUID, dict[str, int]],
    tmp_path: Path,
) -> None:
    calls = list(many_expired_calls)  # in start order: the order retention deletes them
    env = settings_env(settings.model_copy(update={"retention_batch_size": 10}))
    # The third batch will block on a row lock inside its transaction, after it deleted its
    # calls' timeline rows and while it deletes the calls (the cascade reaches call_events).
    with database.connect() as blocker:
        blocker.execute("SELECT 1 FROM call_events WHERE call_id = %s FOR UPDATE", (calls[25],))
        log = (tmp_path / "retention.log").open("wb")
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("callstore")),
                "retention",
                "run",
                "--now",
                NOW.isoformat(),
            ],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(
                lambda: _waiting_maintenance_backends(conn) or process.poll() is not None,
                timeout=60,
                what="the retention run to block in its third batch",
            )
            assert process.poll() is None, (tmp_path / "retention.log").read_text()
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            log.close()
        blocker.rollback()
    wait_until(
        lambda: _maintenance_backends(conn) == 0,
        timeout=30,
        what="the killed run's backends to end",
    )

    # Two batches committed, the third rolled back: every call is whole or gone.
    assert_whole_or_gone(conn, many_expired_calls, set(calls[20:]), expired_months_attached=True)
    assert attached_months(conn)["call_messages"] == [date(2026, 1, 1)]

    report = enforce_retention(conn, now=NOW, policy=POLICY)
    assert report.errors == []
    assert report.calls_deleted == 40
    assert_whole_or_gone(conn, many_expired_calls, set())
    assert archive_tables(conn) == sorted(f"{t}_2026_01" for t in PARTITIONED_TABLES)
