"""A ``callstore migrate azure run --until-done`` process SIGKILLed after its first batches: the
next run takes over once the dead run's lock is gone, and the store ends exactly as an
uninterrupted run leaves it (the in-process cases: ``tests/integration/azure/test_resume.py``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.azure_fixtures import Migrate, expected_counts, migrated_counts
from tests.helpers import PROJECT_ROOT, settings_env, wait_until
from worker.azure.batch import RunResult
from worker.settings import Settings


def _scanned(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT coalesce(sum(scanned), 0) FROM migration_checkpoints").fetchone()
    return int(row[0]) if row else 0


@pytest.mark.usefixtures("legacy_with_bulk")
def test_run_killed_by_sigkill_resumes_without_duplicates(
    azure_settings: Settings, migrate: Migrate, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    log = (tmp_path / "run.log").open("wb")
    run = subprocess.Popen(
        [str(Path(sys.executable).with_name("callstore")), "migrate", "azure", "run",
         "--until-done", "--batch-size", "20"],
        cwd=tmp_path,
        env=settings_env(azure_settings, PYTHONPATH=str(PROJECT_ROOT)),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_until(lambda: _scanned(conn), timeout=60, what="the first batches to commit")
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
        log.close()
    assert run.returncode == -signal.SIGKILL
    partial = migrated_counts(conn)
    assert partial != expected_counts(), "the run finished before it was killed"

    # The dead run's lock goes with its connection; then the next run takes over.
    def resumed() -> RunResult | None:
        result = migrate(batch_size=100)
        return None if result.skipped else result

    result = wait_until(resumed, timeout=30, what="the killed run's job lock to be released")
    assert result is not None
    assert result.caught_up
    assert migrated_counts(conn) == expected_counts()
    duplicates = conn.execute(
        "SELECT count(*) FROM (SELECT call_id, sequence FROM call_messages"
        " GROUP BY call_id, sequence HAVING count(*) > 1) d"
    ).fetchone()
    assert duplicates == (0,)
