"""Exclusive periodic jobs: one run at a time, each recorded in ``job_runs``."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from worker.jobs import JobName, exclusive_job
from worker.settings import Settings


def _run(conn: psycopg.Connection[Any], job: str) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT last_status, runs, last_success_at IS NOT NULL, last_error, last_details"
        " FROM job_runs WHERE job = %s",
        (job,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_a_run_is_recorded_with_its_details(
    settings: Settings, conn: psycopg.Connection[Any]
) -> None:
    with exclusive_job(settings, JobName.FLUSH_SPOOL) as job:
        assert job is not None
        job.details["done"] = 3
    assert _run(conn, JobName.FLUSH_SPOOL) == ("succeeded", 1, True, None, {"done": 3})


def test_a_second_run_skips_while_the_first_holds_the_lock(
    settings: Settings, conn: psycopg.Connection[Any]
) -> None:
    with exclusive_job(settings, JobName.FLUSH_SPOOL) as first:
        assert first is not None
        with exclusive_job(settings, JobName.FLUSH_SPOOL) as second:
            assert second is None
        assert _run(conn, JobName.FLUSH_SPOOL)[0] == "skipped"
    assert _run(conn, JobName.FLUSH_SPOOL)[:2] == ("succeeded", 2)
    with exclusive_job(settings, JobName.ROTATE_PARTITIONS) as unrelated:
        assert unrelated is not None


def test_a_failed_run_is_recorded_and_raised(
    settings: Settings, conn: psycopg.Connection[Any]
) -> None:
    with pytest.raises(RuntimeError), exclusive_job(settings, JobName.FLUSH_SPOOL):
        raise RuntimeError("boom")
    status, _, succeeded, error, _ = _run(conn, JobName.FLUSH_SPOOL)
    assert (status, succeeded, error) == ("failed", False, "RuntimeError: boom")


def test_a_run_that_fails_without_raising_is_recorded_failed(
    settings: Settings, conn: psycopg.Connection[Any]
) -> None:
    with exclusive_job(settings, JobName.FLUSH_SPOOL) as job:
        assert job is not None
        job.details["done"] = 1
        job.fail(RuntimeError("two steps left for the next run"))
    status, _, succeeded, error, details = _run(conn, JobName.FLUSH_SPOOL)
    assert (status, succeeded, details) == ("failed", False, {"done": 1})
    assert error == "RuntimeError: two steps left for the next run"
