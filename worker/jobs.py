"""Periodic jobs that never run twice at once, and the record of their last run.

Exactly one beat should run, but two by mistake (or a run that outlasts its period) must not do
the work twice. Each job holds a PostgreSQL session-level advisory lock on a dedicated
connection for as long as it runs; a second run finds the lock taken, logs that it skipped and
returns. The lock dies with the connection, so a killed worker never leaves it stuck.

``job_runs`` keeps the last start, finish, success and error of each job, for
``callstore_beat_job_last_success_age_seconds`` and for operators.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from worker.db import translate_database_errors
from worker.log import get_logger
from worker.settings import Settings

log = get_logger("callstore.jobs")


class JobName(StrEnum):
    """Every job recorded in ``job_runs``. The values are stored there, keyed into advisory
    locks and exported as the ``job`` label of ``callstore_beat_job_last_success_age_seconds``,
    so they never change."""

    ROTATE_PARTITIONS = "rotate_partitions"
    ENFORCE_RETENTION = "enforce_retention"
    FLUSH_SPOOL = "flush_spool"
    CONSISTENCY_CHECK = "consistency.check"
    MIGRATION = "migration"
    #: Recorded by the canary's round trip (``worker.monitoring.canary``), never locked.
    CANARY = "canary"


#: ``progress(**counts)``: where a long run is, called as it goes (a task's state in Flower,
#: the CLI's running count). Each job names its own counts (e.g. ``phase``, ``batches``).
Progress = Callable[..., None]


def lock_key(job: JobName) -> int:
    """A stable signed 64-bit advisory-lock key for ``job``."""
    digest = hashlib.sha256(f"callstore.job.{job}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass
class JobRunContext:
    """Handed to the job body: it fills ``details`` with what the run did."""

    job: JobName
    details: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None

    def fail(self, error: BaseException) -> None:
        """Record the run as failed with ``error`` without raising it: for a run that did what
        it could and returns a report of the rest (retention), so its caller still sees it."""
        self.error = error


@dataclass(frozen=True, slots=True)
class Skipped:
    """What a job's run returns when another run of it held the lock: nothing was done."""

    job: JobName


_RECORD = """
INSERT INTO job_runs AS j (job, last_status, last_started_at, runs)
VALUES (%(job)s, %(status)s, now(), 1)
ON CONFLICT (job) DO UPDATE SET last_status = EXCLUDED.last_status,
    last_started_at = now(), runs = j.runs + 1
"""
_FINISH = """
UPDATE job_runs SET last_status = %(status)s, last_finished_at = now(),
       last_success_at = CASE WHEN %(status)s::varchar = 'succeeded' THEN now()
                              ELSE last_success_at END,
       last_error = %(error)s, last_duration_ms = %(duration_ms)s, last_details = %(details)s
 WHERE job = %(job)s
"""


@contextmanager
def exclusive_job(settings: Settings, job: JobName) -> Iterator[JobRunContext | None]:
    """Run the body only if no other run of ``job`` holds its lock; yields None when skipped.

    The body does its own (short) transactions; this context only holds the lock and records
    the run in ``job_runs``.
    """
    with (
        translate_database_errors(),
        psycopg.connect(settings.libpq_url, autocommit=True, connect_timeout=10) as conn,
    ):
        acquired = conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(job),)).fetchone()
        if not acquired or not acquired[0]:
            log.info("job skipped: another run holds its lock", action="job_skipped", job=job)
            conn.execute(_RECORD, {"job": job, "status": "skipped"})
            conn.execute(
                _FINISH,
                {
                    "job": job,
                    "status": "skipped",
                    "error": None,
                    "duration_ms": 0,
                    "details": Jsonb({}),
                },
            )
            yield None
            return
        started = time.perf_counter()
        conn.execute(_RECORD, {"job": job, "status": "running"})
        context = JobRunContext(job)
        try:
            yield context
        except BaseException as error:
            _finish(conn, context, "failed", started, error)
            raise
        else:
            status = "succeeded" if context.error is None else "failed"
            _finish(conn, context, status, started, context.error)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(job),))


def _finish(
    conn: psycopg.Connection[Any],
    context: JobRunContext,
    status: str,
    started: float,
    error: BaseException | None,
) -> None:
    duration_ms = (time.perf_counter() - started) * 1000
    try:
        conn.execute(
            _FINISH,
            {
                "job": context.job,
                "status": status,
                "error": None if error is None else f"{type(error).__name__}: {error}"[:4000],
                "duration_ms": duration_ms,
                "details": Jsonb(context.details),
            },
        )
    except psycopg.Error:  # the run's own outcome matters more than its bookkeeping
        log.warning("could not record job run", job=context.job, status=status)
    log.info(
        "job finished",
        action="job",
        job=context.job,
        status=status,
        duration_ms=round(duration_ms, 1),
        **{k: v for k, v in context.details.items() if isinstance(v, int | float | str)},
    )
