"""``callstore partitions status|ensure`` and ``callstore retention run``, in process, and the
maintenance task shells called directly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine

from models.base import PARTITIONED_TABLES
from tests.helpers import assert_whole_or_gone, drop_all_partitions, invoke_cli, store_call
from worker.jobs import JobName, exclusive_job
from worker.settings import Settings


def test_ensure_then_status_shows_march_to_june_2027_for_every_table(
    configured: Settings, conn: psycopg.Connection[Any]
) -> None:
    ensured = invoke_cli("partitions", "ensure", "--now", "2027-03-15")
    assert ensured.exit_code == 0, ensured.output
    assert "horizon 2027-06, needed up to 2027-06 (ok)" in ensured.output
    again = invoke_cli("partitions", "ensure", "--now", "2027-03-15")
    assert "0 partition(s) created" in again.output

    status = invoke_cli("partitions", "status", "--now", "2027-03-15")
    assert status.exit_code == 0, status.output
    assert "horizon 2027-06, needed up to 2027-06 (2027-03 + 3 month(s)): ok" in status.output
    for table in PARTITIONED_TABLES:
        for month in ("03", "04", "05", "06"):
            assert f"{table}_2027_{month}" in status.output
    assert status.output.count("default partition: none") == len(PARTITIONED_TABLES)


def test_status_reports_a_short_horizon(
    configured: Settings, conn: psycopg.Connection[Any]
) -> None:
    drop_all_partitions(conn)
    status = invoke_cli("partitions", "status", "--now", "2027-03-15")
    assert "horizon none (current month missing)" in status.output
    assert ": SHORT" in status.output


def test_retention_dry_run_then_run_thirteen_months_later(
    configured: Settings, conn: psycopg.Connection[Any], engine: Engine
) -> None:
    november = store_call(engine, 1, datetime(2026, 11, 20, 10, tzinfo=UTC))
    december = store_call(engine, 2, datetime(2026, 12, 30, 10, tzinfo=UTC))
    azure = store_call(engine, 3, datetime(2026, 11, 2, 10, tzinfo=UTC), source="azure")
    later = "2027-12-20T12:00:00+00:00"

    dry = invoke_cli("retention", "run", "--dry-run", "--now", later)
    assert dry.exit_code == 0, dry.output
    assert "would delete 2 call(s) (azure 1, runtime 1)" in dry.output
    for table in PARTITIONED_TABLES:
        assert f"would detach {table}_2026_11 (2026-11" in dry.output
    assert "would drop" not in dry.output
    assert_whole_or_gone(
        conn, dict([november, december, azure]), {november[0], december[0], azure[0]}
    )

    run = invoke_cli("retention", "run", "--now", later)
    assert run.exit_code == 0, run.output
    assert "deleted 2 call(s)" in run.output
    for table in PARTITIONED_TABLES:
        assert f"archived archive.{table}_2026_11" in run.output
    assert_whole_or_gone(conn, dict([november, december, azure]), {december[0]})

    status = invoke_cli("partitions", "status", "--now", later)
    assert "archive.call_messages_2026_11" in status.output
    assert "dropped after 2027-12-27T12:00:00+00:00" in status.output

    dropped = invoke_cli("retention", "run", "--now", "2027-12-27T12:00:00+00:00")
    for table in PARTITIONED_TABLES:
        assert f"dropped archive.{table}_2026_11" in dropped.output
    assert_whole_or_gone(conn, dict([november, december, azure]), {december[0]})


def test_a_second_run_skips_while_the_first_holds_the_lock(
    configured: Settings, conn: psycopg.Connection[Any]
) -> None:
    from tasks import maintenance

    with exclusive_job(configured, JobName.ENFORCE_RETENTION) as held:
        assert held is not None
        result = invoke_cli("retention", "run", "--now", "2027-12-20")
        assert result.exit_code == 1
        assert "another retention run holds the lock" in result.output
        assert maintenance.enforce_retention() == maintenance.SKIPPED
        row = conn.execute(
            "SELECT last_status FROM job_runs WHERE job = %s", (JobName.ENFORCE_RETENTION,)
        ).fetchone()
        assert row == ("skipped",)
    with exclusive_job(configured, JobName.ROTATE_PARTITIONS) as held:
        assert held is not None
        assert maintenance.rotate_partitions() == maintenance.SKIPPED
        assert invoke_cli("partitions", "ensure").exit_code == 1
    rows = dict(conn.execute("SELECT job, last_status FROM job_runs").fetchall())
    assert rows == {JobName.ENFORCE_RETENTION: "succeeded", JobName.ROTATE_PARTITIONS: "succeeded"}


def test_the_task_shells_run_their_services(
    configured: Settings, conn: psycopg.Connection[Any]
) -> None:
    from tasks import maintenance

    rotated = maintenance.rotate_partitions()
    assert rotated["ok"] is True
    assert rotated["created"] == 0  # the template already has this month and 3 ahead
    enforced = maintenance.enforce_retention()
    assert enforced["complete"] is True
    assert enforced["calls_deleted"] == 0
    flushed = maintenance.flush_spool()
    assert flushed["sent"] == 0
    rows = dict(conn.execute("SELECT job, last_status FROM job_runs").fetchall())
    assert rows == {
        JobName.ROTATE_PARTITIONS: "succeeded",
        JobName.ENFORCE_RETENTION: "succeeded",
        JobName.FLUSH_SPOOL: "succeeded",
    }


@pytest.mark.parametrize("command", [["partitions", "status"], ["retention", "run", "--dry-run"]])
def test_a_bad_now_is_refused_with_one_line(configured: Settings, command: list[str]) -> None:
    result = invoke_cli(*command, "--now", "next tuesday")
    assert result.exit_code == 2
    assert "is not an ISO date" in result.output
