"""A batch killed at any point is redone exactly once: nothing lost, nothing twice."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.azure_fixtures import Migrate, snapshot
from tests.helpers import PROJECT_ROOT, settings_env, wait_until
from worker.azure import checkpoints, sources, transforms
from worker.azure.batch import RunResult
from worker.azure.client import AzureStorage
from worker.dev import legacy_data as generate
from worker.settings import Settings

BULK_CALLS = 40
SEED = 5


def _expected() -> dict[str, int]:
    """What a complete migration of the cases plus the bulk holds."""
    bulk = generate.bulk_entities(calls=BULK_CALLS, seed=SEED)
    entries = bulk[sources.CALL_TRANSCRIPTS.name]
    return {
        "customers": 3 + len(bulk[sources.CUSTOMERS.name]),
        "calls": 9 + len({e["PartitionKey"] for e in entries}),
        "entries": 18 + len(entries),
    }


def _counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM calls),"
        " (SELECT count(*) FROM call_messages) + (SELECT count(*) FROM call_tool_executions)"
        " + (SELECT count(*) FROM call_events)"
    ).fetchone()
    assert row is not None
    return {"customers": row[0], "calls": row[1], "entries": row[2]}


def _scanned(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT coalesce(sum(scanned), 0) FROM migration_checkpoints").fetchone()
    return int(row[0]) if row else 0


def _checkpoints(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT * FROM migration_checkpoints ORDER BY source").fetchall()


@pytest.fixture
def filled(legacy: AzureStorage) -> AzureStorage:
    generate.write_cases(legacy)
    generate.write_bulk(legacy, calls=BULK_CALLS, seed=SEED)
    return legacy


@pytest.mark.usefixtures("filled")
def test_batch_killed_before_its_commit_is_redone_once(
    migrate: Migrate, conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(migrate(max_batches=2, batch_size=100).batches) == 2
    before, positions = snapshot(conn), _checkpoints(conn)

    def killed(*_: Any) -> None:  # the batch's rows are written; its checkpoint is not yet
        raise RuntimeError("killed between the data write and the commit")

    monkeypatch.setattr(checkpoints, "save", killed)
    with pytest.raises(RuntimeError, match="killed between"):
        migrate(max_batches=1, batch_size=100)
    assert snapshot(conn) == before
    assert _checkpoints(conn) == positions
    monkeypatch.undo()

    assert migrate(batch_size=100).caught_up
    assert _counts(conn) == _expected()


@pytest.mark.usefixtures("filled")
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
    partial = _counts(conn)
    assert partial != _expected(), "the run finished before it was killed"

    # The dead run's lock goes with its connection; then the next run takes over.
    def resumed() -> RunResult | None:
        result = migrate(batch_size=100)
        return None if result.skipped else result

    result = wait_until(resumed, timeout=30, what="the killed run's job lock to be released")
    assert result is not None
    assert result.caught_up
    assert _counts(conn) == _expected()
    duplicates = conn.execute(
        "SELECT count(*) FROM (SELECT call_id, sequence FROM call_messages"
        " GROUP BY call_id, sequence HAVING count(*) > 1) d"
    ).fetchone()
    assert duplicates == (0,)


def test_a_value_postgres_refuses_becomes_a_reject_and_the_rest_migrates(
    legacy: AzureStorage,
    migrate: Migrate,
    conn: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    generate.write_cases(legacy)
    convert = transforms.TRANSFORMS[sources.CUSTOMERS.name]

    def unforeseen(record: Any) -> Any:  # a value the transform let through by mistake
        row = convert(record)
        assert isinstance(row, transforms.CustomerRow)
        if record.partition_key == generate.C_DOTS:
            row = dataclasses.replace(row, segment="gold")
        return row

    monkeypatch.setitem(transforms.TRANSFORMS, sources.CUSTOMERS.name, unforeseen)
    assert migrate().caught_up
    reason = conn.execute(
        "SELECT reason FROM migration_rejects WHERE key = %s", (f"{generate.C_DOTS}/profile",)
    ).fetchone()
    assert reason is not None
    assert reason[0].startswith("PostgreSQL refused it:")
    assert "ck_customers_segment" in reason[0]
    assert conn.execute("SELECT count(*) FROM customers").fetchone() == (2,)
    assert conn.execute("SELECT count(*) FROM calls").fetchone() == (9,)
